//! A pseudo-terminal for the container (`tracer run -i -t`, or a bundle's
//! `process.terminal`), made as runc makes one with a console socket: the init opens
//! `/dev/ptmx` inside the container's own devpts, makes the slave its controlling terminal
//! and stdio, and sends the master over a socket to the parent. The parent puts the user's
//! terminal in raw mode, copies bytes both ways, passes the window size on (and again on
//! SIGWINCH), and restores the terminal however the run ends.

use std::{
    io::{IoSlice, IoSliceMut, Read as _, Write as _},
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    sync::OnceLock,
};

use anyhow::Context as _;
use nix::{
    fcntl::OFlag,
    pty,
    sys::{
        socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags},
        termios,
    },
};

/// The console socket's fd in the init.
pub const CONSOLE_FD: RawFd = 5;

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);

/// In the init, after the container's devpts is mounted and the root pivoted: a new
/// terminal becomes the container's, and its master goes to the parent.
pub fn attach_inside() -> anyhow::Result<()> {
    let master = pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).context("opening /dev/ptmx")?;
    pty::grantpt(&master).context("grantpt")?;
    pty::unlockpt(&master).context("unlockpt")?;
    let name = pty::ptsname_r(&master).context("ptsname")?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {name}"))?;
    nix::unistd::setsid().context("setsid")?;
    // SAFETY: TIOCSCTTY on a terminal fd this process owns.
    if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("TIOCSCTTY");
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).context("dup2 the terminal")?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        CONSOLE_FD,
        &[IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the terminal to the parent")?;
    drop(master);
    let _ = nix::unistd::close(CONSOLE_FD);
    Ok(())
}

/// In the parent: the terminal's master the init sends, or `None` when it died first.
pub fn receive(socket: &OwnedFd) -> anyhow::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .context("receiving the container's terminal")?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: a descriptor the kernel just gave this process.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}

/// The user's terminal settings before raw mode, for every way out (drop, panic).
static SAVED: OnceLock<libc::termios> = OnceLock::new();

/// The user's terminal in raw mode while it lives.
pub struct RawTerminal;

impl RawTerminal {
    /// Raw mode on stdin's terminal (which must be one).
    pub fn enter() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).context("-t needs a terminal on stdin")?;
        let _ = SAVED.set(libc::termios::from(saved.clone()));
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let mut raw = saved;
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw)?;
        Ok(Self)
    }
}

fn restore() {
    if let Some(saved) = SAVED.get() {
        let saved = termios::Termios::from(*saved);
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, &saved);
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the container's terminal the size of the user's.
pub fn copy_size(master: RawFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the struct; TIOCSWINSZ reads it; both on fds that are open.
    unsafe {
        if get_winsize(libc::STDIN_FILENO, &mut ws).is_ok() {
            let _ = set_winsize(master, &ws);
        }
    }
}

/// Copies the user's input to the container's terminal and its output back, until the
/// container's side closes (its last process gone). Returns when the output is done.
pub fn relay(master: OwnedFd) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let input = master.try_clone()?;
    // The input side blocks on the user's keys: it ends with the process.
    std::thread::Builder::new()
        .name("tty-in".into())
        .spawn(move || {
            let mut to = std::fs::File::from(input);
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })?;
    Ok(std::thread::Builder::new()
        .name("tty-out".into())
        .spawn(move || {
            let mut from = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            // EIO once no process holds the slave.
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        })?)
}
