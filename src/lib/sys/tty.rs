//! Terminal and socket controls for the pty relay that nix does not wrap:
//! the window size with its pixel fields, packet mode (TIOCPKT), a signal
//! to the terminal's foreground process group (TIOCSIG), external
//! processing for TELNET LINEMODE (EXTPROC / TIOCEXT), the TCP urgent mark
//! (sockatmark), and a descriptor that becomes readable when a process
//! exits (a pidfd on Linux, a kqueue on the BSDs and macOS).
//!
//! Each function is safe to call with any descriptor: a wrong kind of
//! descriptor is an error from the kernel, never undefined behaviour.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::pty::Winsize;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

// The ioctl numbers libc leaves out for NetBSD and OpenBSD, from their
// sys/ttycom.h: TIOCPKT is _IOW('t', 112, int), TIOCEXT _IOW('t', 96, int).
#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
const TIOCPKT: libc::c_ulong = 0x8004_7470;
#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
const TIOCEXT: libc::c_ulong = 0x8004_7460;
#[cfg(any(
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "macos",
    target_os = "ios"
))]
use libc::TIOCEXT;
#[cfg(not(any(target_os = "netbsd", target_os = "openbsd")))]
use libc::TIOCPKT;

/// Set the window size of the terminal on `fd` (a pty master sets it for
/// the slave, and the kernel sends SIGWINCH to its foreground group).
pub fn set_window(fd: BorrowedFd, size: &Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which points
    // to a live, initialised value borrowed for the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size as *const Winsize) })
}

/// The window size of the terminal on `fd`.
pub fn window(fd: BorrowedFd) -> io::Result<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which points
    // to a live local of that type.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size as *mut Winsize) })?;
    Ok(size)
}

/// Turn packet mode on or off on a pty master: when on, every read of the
/// master starts with a control byte (0 for data, else TIOCPKT_* bits).
pub fn set_packet_mode(master: BorrowedFd, on: bool) -> io::Result<()> {
    let flag: libc::c_int = on.into();
    // SAFETY: TIOCPKT reads one int through the pointer, a live local.
    check(unsafe { libc::ioctl(master.as_raw_fd(), TIOCPKT, &flag as *const libc::c_int) })
}

/// Send `sig` to the foreground process group of the terminal whose master
/// is `master`, whatever mode the terminal is in (a program in raw mode
/// still gets it). Linux does this with TIOCSIG for SIGINT, SIGQUIT and
/// SIGTSTP (the kernel refuses other signals there); everything else, and
/// every other system, sends it with killpg to the group tcgetpgrp names.
pub fn signal_foreground(master: BorrowedFd, sig: Signal) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: TIOCSIG takes the signal number by value; no memory is
        // passed to the kernel.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSIG, sig as libc::c_ulong) };
        if rc == 0 {
            return Ok(());
        }
    }
    let group = nix::unistd::tcgetpgrp(master)?;
    nix::sys::signal::killpg(group, sig)?;
    Ok(())
}

/// Turn external processing (EXTPROC) on or off for the terminal of
/// `master`: the line discipline then leaves line editing to the other
/// end (TELNET LINEMODE), and a master in packet mode hears of every
/// termios change (TIOCPKT_IOCTL). Linux sets the termios flag; the BSDs
/// have the TIOCEXT ioctl for it.
pub fn set_external_processing(master: BorrowedFd, on: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let mut modes = tcgetattr(master)?;
        modes.local_flags.set(LocalFlags::EXTPROC, on);
        tcsetattr(master, SetArg::TCSANOW, &modes)?;
        Ok(())
    }
    #[cfg(any(
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "macos",
        target_os = "ios"
    ))]
    {
        let flag: libc::c_int = on.into();
        // SAFETY: TIOCEXT reads one int through the pointer, a live local.
        check(unsafe { libc::ioctl(master.as_raw_fd(), TIOCEXT, &flag as *const libc::c_int) })
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "macos",
        target_os = "ios"
    )))]
    {
        let _ = (master, on);
        Err(io::ErrorKind::Unsupported.into())
    }
}

extern "C" {
    // POSIX.1-2001; in glibc, musl and every BSD libc, not bound by libc.
    fn sockatmark(fd: libc::c_int) -> libc::c_int;
}

/// Whether the next byte to read from socket `fd` is the TCP urgent byte
/// (the "mark"). A read never crosses the mark, so with SO_OOBINLINE the
/// read that starts at the mark returns the urgent byte first.
pub fn at_urgent_mark(fd: BorrowedFd) -> io::Result<bool> {
    // SAFETY: sockatmark takes a descriptor by value and touches no memory
    // of ours.
    let rc = unsafe { sockatmark(fd.as_raw_fd()) };
    check(rc)?;
    Ok(rc == 1)
}

/// A descriptor that polls readable once process `pid` has exited; the
/// process is not reaped (its parent still waits for it). `None` when the
/// process is already a zombie or gone, that is, it has exited.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn exit_watch(pid: Pid) -> io::Result<Option<OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open(2) takes a pid and flags by value and returns a
    // new descriptor (close-on-exec) or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: the kernel just created this descriptor for us; nothing else
    // knows its number, so the OwnedFd is its only owner.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }))
}

/// A descriptor that polls readable once process `pid` has exited; the
/// process is not reaped (its parent still waits for it). `None` when the
/// process is already a zombie or gone, that is, it has exited.
#[cfg(any(
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "ios"
))]
pub fn exit_watch(pid: Pid) -> io::Result<Option<OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: kqueue() takes no arguments and returns a new descriptor or -1.
    let kq = unsafe { libc::kqueue() };
    check(kq)?;
    // SAFETY: the kernel just created this descriptor; we are its only owner.
    let kq = unsafe { OwnedFd::from_raw_fd(kq) };
    let _ = nix::fcntl::fcntl(
        kq.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // SAFETY: struct kevent is plain old data; all-zero is a valid value.
    let mut change: libc::kevent = unsafe { std::mem::zeroed() };
    change.ident = pid.as_raw() as _;
    change.filter = libc::EVFILT_PROC as _;
    change.flags = (libc::EV_ADD | libc::EV_ONESHOT) as _;
    change.fflags = libc::NOTE_EXIT as _;
    // SAFETY: one change read from a live local, no event list written, a
    // null timeout; the kqueue descriptor is ours and open.
    let rc = unsafe {
        libc::kevent(
            kq.as_raw_fd(),
            &change,
            1 as _,
            std::ptr::null_mut(),
            0 as _,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        // A zombie (already exited) cannot be watched: ESRCH.
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(err),
        };
    }
    Ok(Some(kq))
}

/// No process-exit descriptor on this system: the relay takes one from the
/// caller (`ChildWatch::Fd`) instead.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "ios"
)))]
pub fn exit_watch(_pid: Pid) -> io::Result<Option<OwnedFd>> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn window_size_round_trips_with_pixels() {
        let pair = nix::pty::openpty(None, None).unwrap();
        let size = Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 960,
            ws_ypixel: 640,
        };
        set_window(pair.master.as_fd(), &size).unwrap();
        let seen = window(pair.slave.as_fd()).unwrap();
        assert_eq!(
            (seen.ws_row, seen.ws_col, seen.ws_xpixel, seen.ws_ypixel),
            (40, 120, 960, 640)
        );
    }

    #[test]
    fn external_processing_reaches_the_slave() {
        use nix::sys::termios::{tcgetattr, LocalFlags};
        let pair = nix::pty::openpty(None, None).unwrap();
        set_external_processing(pair.master.as_fd(), true).unwrap();
        let slave = tcgetattr(pair.slave.as_fd()).unwrap();
        assert!(slave.local_flags.contains(LocalFlags::EXTPROC));
        set_external_processing(pair.master.as_fd(), false).unwrap();
        let slave = tcgetattr(pair.slave.as_fd()).unwrap();
        assert!(!slave.local_flags.contains(LocalFlags::EXTPROC));
    }

    #[test]
    fn urgent_mark_is_an_error_on_a_terminal() {
        let pair = nix::pty::openpty(None, None).unwrap();
        assert!(at_urgent_mark(pair.master.as_fd()).is_err());
    }

    #[test]
    fn exit_watch_turns_readable_when_the_process_exits() {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("read x; true")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let watch = exit_watch(Pid::from_raw(child.id() as i32))
            .unwrap()
            .expect("a running process can be watched");
        let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::from(50u16)).unwrap(), 0);
        drop(child.stdin.take());
        let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::from(5000u16)).unwrap(), 1);
        // Not reaped by the watch: the parent still collects the status.
        assert!(child.wait().unwrap().success());
        // Gone now, which counts as exited.
        assert!(exit_watch(Pid::from_raw(child.id() as i32))
            .unwrap()
            .is_none());
    }
}
