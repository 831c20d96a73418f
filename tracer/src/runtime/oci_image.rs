//! OCI image layouts (what `skopeo copy ... oci:DIR:TAG` or `umoci` make): each layer is
//! unpacked once into a cache and the layers are stacked as overlay lower layers, the way
//! Docker's overlay2 does. Whiteouts become what overlayfs understands.

use std::{
    ffi::CString,
    fs,
    io::Read,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

/// Unpacked layers, by digest.
pub const LAYER_CACHE: &str = "/var/lib/tracer/layers";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image, ready to be a container's root.
#[derive(Debug)]
pub struct OciImage {
    /// Unpacked layers, top layer first (overlay's `lowerdir` order).
    pub lowerdirs: Vec<PathBuf>,
    pub env: Vec<String>,
    /// Entrypoint followed by cmd.
    pub args: Vec<String>,
    pub workdir: Option<String>,
}

/// `DIR` or `DIR:TAG`.
fn split_ref(spec: &str) -> (&str, Option<&str>) {
    match spec.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !tag.is_empty() => (dir, Some(tag)),
        _ => (spec, None),
    }
}

fn blob(layout: &Path, d: &Descriptor) -> PathBuf {
    let digest = d.digest();
    layout
        .join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

fn tag_of(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

/// Reads the image and makes sure every layer is unpacked in `cache`.
pub fn open(spec: &str, cache: &Path) -> anyhow::Result<OciImage> {
    let (dir, tag) = split_ref(spec);
    let layout = Path::new(dir);
    let index_path = layout.join("index.json");
    if !index_path.is_file() {
        bail!("image {dir}: not an OCI image layout (no index.json)");
    }
    let index = ImageIndex::from_file(&index_path)
        .with_context(|| format!("reading {}", index_path.display()))?;
    let manifests = index.manifests();
    let chosen = match tag {
        Some(t) => manifests.iter().find(|m| tag_of(m) == Some(t)),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    let Some(desc) = chosen else {
        let tags: Vec<&str> = manifests.iter().filter_map(tag_of).collect();
        match tag {
            Some(t) => bail!("image {dir} has no tag {t} (tags: {})", tags.join(", ")),
            None => bail!(
                "image {dir} has several images: name one as {dir}:TAG (tags: {})",
                tags.join(", ")
            ),
        }
    };
    let manifest = ImageManifest::from_file(blob(layout, desc))
        .with_context(|| format!("reading the manifest of {spec}"))?;
    let config = ImageConfiguration::from_file(blob(layout, manifest.config()))
        .with_context(|| format!("reading the configuration of {spec}"))?;
    let mut lowerdirs = Vec::new();
    for layer in manifest.layers() {
        lowerdirs.push(unpack_once(layout, layer, cache)?);
    }
    lowerdirs.reverse();
    let c = config.config().clone().unwrap_or_default();
    let mut args = c.entrypoint().clone().unwrap_or_default();
    args.extend(c.cmd().clone().unwrap_or_default());
    Ok(OciImage {
        lowerdirs,
        env: c.env().clone().unwrap_or_default(),
        args,
        workdir: c.working_dir().clone().filter(|w| !w.is_empty()),
    })
}

/// The layer's directory in the cache, unpacking it first if needed. Unpacked under a
/// temporary name and renamed, so a half-unpacked layer is never used.
fn unpack_once(layout: &Path, layer: &Descriptor, cache: &Path) -> anyhow::Result<PathBuf> {
    let digest = layer.digest();
    let dest = cache.join(format!("{}-{}", digest.algorithm(), digest.digest()));
    if dest.is_dir() {
        return Ok(dest);
    }
    fs::create_dir_all(cache)?;
    let tmp = cache.join(format!(
        ".unpacking-{}-{}",
        std::process::id(),
        digest.digest()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let file = fs::File::open(blob(layout, layer))
        .with_context(|| format!("layer {digest} is missing from the image"))?;
    let media = layer.media_type().to_string();
    let reader: Box<dyn Read> = if media.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if media.ends_with("tar") {
        Box::new(file)
    } else {
        bail!("layer {digest}: media type {media} is not supported (tar or tar+gzip)");
    };
    unpack(reader, &tmp).with_context(|| format!("unpacking layer {digest}"))?;
    match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        // Another run unpacked it meanwhile.
        Err(_) if dest.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => Err(e.into()),
    }
}

/// Unpacks a layer tar, turning OCI whiteouts into overlayfs ones: `.wh.NAME` becomes a 0:0
/// character device `NAME`, `.wh..wh..opq` marks its directory opaque.
pub fn unpack(reader: impl Read, dest: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let parent = dest.join(path.parent().unwrap_or(Path::new("")));
        match name.as_deref() {
            Some(".wh..wh..opq") => {
                fs::create_dir_all(&parent)?;
                set_opaque(&parent)?;
            }
            Some(n) if n.starts_with(".wh.") => {
                fs::create_dir_all(&parent)?;
                let target = parent.join(&n[4..]);
                nix::sys::stat::mknod(
                    &target,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .with_context(|| format!("whiteout {}", target.display()))?;
            }
            _ => {
                entry.unpack_in(dest)?;
            }
        }
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> anyhow::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    let name = CString::new("trusted.overlay.opaque")?;
    // SAFETY: valid NUL-terminated strings and a 1-byte value.
    let ret = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("marking {} opaque", dir.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_split_at_the_tag() {
        assert_eq!(split_ref("/img:v1"), ("/img", Some("v1")));
        assert_eq!(split_ref("/img"), ("/img", None));
        assert_eq!(split_ref("rel/img:latest"), ("rel/img", Some("latest")));
        assert_eq!(split_ref("/odd:dir/img"), ("/odd:dir/img", None));
    }

    #[test]
    fn missing_layouts_are_named() {
        let err = open("/nonexistent-image:v1", Path::new("/tmp/none")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image /nonexistent-image: not an OCI image layout (no index.json)"
        );
    }
}
