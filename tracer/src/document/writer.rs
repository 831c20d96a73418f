//! The trace document written as it goes: the header first, then each event (and each cgroup
//! name, as a record of its own) as it is read, flushed at every batch so that what was read
//! survives a SIGKILL (and `fsync`ed at most once a second), and the counters and containers
//! when the session ends. Nothing is kept in memory. With a size limit, a full document is
//! finished and the next one (`trace.1.json`, `trace.2.json`, ...) begun; `tracer report`
//! reads the parts as one trace.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{DocCounters, Host, Previous, Record, FORMAT, VERSION};
use crate::{
    correlate::{Container, Correlation},
    event::{redact::Redactor, Detail, Event},
};

/// `fsync` at most this often: flushing is what survives a crash of the tracer; syncing is
/// for the machine's.
const SYNC_EVERY: Duration = Duration::from_secs(1);

pub struct DocumentWriter {
    out: BufWriter<File>,
    /// The first part's path; later parts are numbered after it.
    base: PathBuf,
    part: u32,
    host: Host,
    /// Bytes of the current part.
    written: u64,
    /// Start a new part past this many bytes.
    rotate: Option<u64>,
    first: bool,
    last_sync: Instant,
    /// The cgroup names written (of cgroups not removed since), for each part to carry.
    cgroups: BTreeMap<u64, String>,
    previous: Option<Previous>,
}

/// The path of part `n` of the document at `base` (`trace.json`, `trace.1.json`, ...).
pub fn part_path(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    base.with_file_name(name)
}

fn header(host: &Host, part: u32, previous: Option<&Previous>) -> io::Result<Vec<u8>> {
    let mut h =
        format!(r#"{{"format":"{FORMAT}","version":{VERSION},"part":{part},"host":"#).into_bytes();
    serde_json::to_writer(&mut h, host)?;
    if let Some(p) = previous.filter(|_| part == 0) {
        h.extend_from_slice(br#","previous":"#);
        serde_json::to_writer(&mut h, p)?;
    }
    h.extend_from_slice(br#","events":["#);
    Ok(h)
}

impl DocumentWriter {
    /// Creates the document at `path` (the first part) and writes its header.
    pub fn create(path: &Path, host: Host, rotate: Option<u64>) -> io::Result<Self> {
        Self::start(File::create(path)?, path, host, rotate)
    }

    /// Writes the header into `file`, created at `path` (before anything was loaded, so an
    /// unwritable path fails first).
    pub fn start(file: File, path: &Path, host: Host, rotate: Option<u64>) -> io::Result<Self> {
        Self::start_after(file, path, host, rotate, None)
    }

    /// Like [`Self::start`], saying where the previous watch's document (set aside) ended.
    pub fn start_after(
        file: File,
        path: &Path,
        host: Host,
        rotate: Option<u64>,
        previous: Option<Previous>,
    ) -> io::Result<Self> {
        let mut w = Self {
            out: BufWriter::with_capacity(1 << 16, file),
            base: path.to_path_buf(),
            part: 0,
            host,
            written: 0,
            rotate,
            first: true,
            last_sync: Instant::now(),
            cgroups: BTreeMap::new(),
            previous,
        };
        w.begin()?;
        Ok(w)
    }

    fn begin(&mut self) -> io::Result<()> {
        let h = header(&self.host, self.part, self.previous.as_ref())?;
        self.out.write_all(&h)?;
        self.written = h.len() as u64;
        self.first = true;
        self.out.flush()?;
        // Names learnt in earlier parts: each part reads on its own too.
        for (id, path) in std::mem::take(&mut self.cgroups) {
            self.cgroup(id, &path)?;
        }
        Ok(())
    }

    fn item(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
            self.written += 1;
        }
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        if let Detail::CgroupRmdir { id, root: 0, .. } = ev.detail {
            self.cgroups.remove(&id);
        }
        let bytes = serde_json::to_vec(&*Redactor::global().event(ev))?;
        self.item(&bytes)
    }

    /// A cgroup's name, learnt while tracing.
    pub fn cgroup(&mut self, id: u64, path: &str) -> io::Result<()> {
        let bytes = serde_json::to_vec(&Record::Cgroup {
            id,
            path: path.to_string(),
        })?;
        self.item(&bytes)?;
        self.cgroups.insert(id, path.to_string());
        Ok(())
    }

    /// The end of a batch: what was written is flushed (and synced, at most once a second);
    /// a part past its size is finished and the next begun.
    pub fn tick(&mut self, counters: &DocCounters) -> io::Result<()> {
        self.out.flush()?;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.out.get_ref().sync_data()?;
            self.last_sync = Instant::now();
        }
        if self.rotate.is_some_and(|limit| self.written >= limit) {
            self.end(counters, None)?;
            self.part += 1;
            let file = File::create(part_path(&self.base, self.part))?;
            self.out = BufWriter::with_capacity(1 << 16, file);
            self.begin()?;
        }
        Ok(())
    }

    /// Closes the events array and writes what comes after it: the counters, and in the
    /// last part the containers.
    fn end(&mut self, counters: &DocCounters, found: Option<&Correlation>) -> io::Result<()> {
        self.out.write_all(br#"],"counters":"#)?;
        serde_json::to_writer(&mut self.out, counters)?;
        if let Some(found) = found {
            self.out.write_all(br#","containers":"#)?;
            let shown: Vec<_> = found.containers.iter().map(Container::redacted).collect();
            serde_json::to_writer(&mut self.out, &shown)?;
            self.out.write_all(br#","unattributed":"#)?;
            serde_json::to_writer(&mut self.out, &found.unattributed)?;
            write!(
                self.out,
                r#","unattributed_total":{}"#,
                found.unattributed_total
            )?;
            if found.containers_dropped > 0 {
                write!(
                    self.out,
                    r#","containers_dropped":{}"#,
                    found.containers_dropped
                )?;
            }
            if found.processes_forgotten > 0 {
                write!(
                    self.out,
                    r#","processes_forgotten":{}"#,
                    found.processes_forgotten
                )?;
            }
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Ends the document: counters and containers.
    pub fn finish(mut self, counters: &DocCounters, found: &Correlation) -> io::Result<()> {
        self.end(counters, Some(found))
    }

    /// How many parts were written so far.
    pub fn parts(&self) -> u32 {
        self.part + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{document::Document, event::Detail};

    fn host() -> Host {
        Host {
            kernel: "k".into(),
            boot_to_wall_ns: 5,
            hooks: Default::default(),
            ns: Default::default(),
        }
    }

    #[test]
    fn parts_are_numbered_after_the_first() {
        assert_eq!(
            part_path(Path::new("/t/trace.json"), 0),
            Path::new("/t/trace.json")
        );
        assert_eq!(
            part_path(Path::new("/t/trace.json"), 2),
            Path::new("/t/trace.2.json")
        );
        assert_eq!(part_path(Path::new("/t/trace"), 1), Path::new("/t/trace.1"));
    }

    /// What is written reads back at every step: after the header, after events, whole.
    #[test]
    fn written_as_it_goes_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.json");
        let mut w = DocumentWriter::create(&path, host(), Some(300)).unwrap();
        let flushed = std::fs::read_to_string(&path).unwrap();
        assert!(
            flushed.starts_with(r#"{"format":"tracer-trace","version":"#),
            "{flushed}"
        );
        w.cgroup(7, "/docker/x").unwrap();
        for i in 0..10 {
            w.event(&Event {
                ts_ns: i,
                ..Event::for_test(1, Detail::Fork { child_pid: 2 })
            })
            .unwrap();
            w.tick(&DocCounters::default()).unwrap();
        }
        let parts = w.parts();
        assert!(parts > 1, "rotated at 300 bytes");
        w.finish(&DocCounters::default(), &Correlation::default())
            .unwrap();
        let mut events = 0;
        for n in 0..parts {
            let text = std::fs::read_to_string(part_path(&path, n)).unwrap();
            let doc: Document = serde_json::from_str(&text).unwrap();
            assert_eq!(doc.cgroups.get(&7).map(String::as_str), Some("/docker/x"));
            events += doc.events.len();
        }
        assert_eq!(events, 10);
    }
}
