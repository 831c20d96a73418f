//! The built-in runtime's naming rules: where its state lives and how its veths and
//! hostnames are named after a container's id. Correlation reads these to recognise the
//! runtime's containers, so they live apart from the runtime's machinery.

/// Each container's state directory is `STATE_ROOT/<id>`; its root is `.../<id>/merged`.
pub const STATE_ROOT: &str = "/run/tracer";

/// Characters of the id in veth names and the default hostname.
pub const SHORT_ID_LEN: usize = 8;

/// The id's short form, as names use it.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

/// The host and container ends of a container's veth pair.
pub fn veth_names(id: &str) -> [String; 2] {
    let short = short_id(id);
    [format!("tv{short}"), format!("tp{short}")]
}

/// The id in a path under [`STATE_ROOT`] (`/run/tracer/<id>/merged` → `<id>`).
pub fn state_id(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(STATE_ROOT)?.strip_prefix('/')?;
    let id = rest.split('/').next()?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_id() {
        assert_eq!(veth_names("0a1b2c3d4e5f"), ["tv0a1b2c3d", "tp0a1b2c3d"]);
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(
            state_id("/run/tracer/0a1b2c3d4e5f/merged"),
            Some("0a1b2c3d4e5f")
        );
        assert_eq!(state_id("/run/tracer/not-hex/merged"), None);
        assert_eq!(state_id("/run/tracerx/abc"), None);
        assert_eq!(state_id("/run/tracer/layers"), None);
        assert_eq!(state_id("/run/other/0a1b"), None);
    }
}
