//! The floor under `tracer report` on this machine, in two figures: reading a trace file
//! from the page cache (1 MiB reads into one buffer, as a streaming reader does), and a
//! SIMD JSON parser (sonic-rs) parsing it, every event into a value that is then dropped
//! (memory stays bounded, as in `report`; the file is mapped, so its bytes are not copied
//! first). Used by `cargo xtask bench`; prints `read_s parse_s events`.

use std::{fs::File, io::Read, os::fd::AsRawFd, process::ExitCode, time::Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = &args[..] else {
        eprintln!("usage: json-floor FILE");
        return ExitCode::from(2);
    };
    match floor(path) {
        Ok((read, parse, events)) => {
            println!("{read:.3} {parse:.3} {events}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("json-floor: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn floor(path: &str) -> Result<(f64, f64, u64), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    let read = t.elapsed().as_secs_f64();
    if len == 0 {
        return Err("empty".into());
    }
    let t = Instant::now();
    // SAFETY: a private read-only mapping of a file we opened, of its length; only read.
    let bytes = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().to_string());
        }
        std::slice::from_raw_parts(p as *const u8, len)
    };
    // The events array found by skipping the header at SIMD speed, then each event found
    // the same way and parsed into a value of its own.
    let array = sonic_rs::get(bytes, ["events"]).map_err(|e| e.to_string())?;
    let mut events = 0;
    for event in sonic_rs::to_array_iter(array.as_raw_str()) {
        let event = event.map_err(|e| e.to_string())?;
        let value: sonic_rs::Value =
            sonic_rs::from_str(event.as_raw_str()).map_err(|e| e.to_string())?;
        drop(value);
        events += 1;
    }
    let parse = t.elapsed().as_secs_f64();
    Ok((read, parse, events))
}
