//! The only module with `unsafe` code. Every block carries a SAFETY comment
//! and every function exported from here is safe to call.
//!
//! What lives here: fork, taking over inherited descriptors, resetting signal
//! dispositions, crypt(3) (and the mmap it uses, see `crypt_scratch`), the
//! controlling-terminal and window-size ioctls, and utmpx records.
//! Everything else goes through nix's safe wrappers.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::{ForkResult, Pid};
pub mod tty;

/// _exit(2): end the process at once, with `code`, running no exit
/// handler and no library destructor (the end of a forked child, whose
/// libraries' state is its parent's).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain integer, reads no memory of ours and
    // never returns; nothing is left half done that Rust relies on.
    unsafe { libc::_exit(code) }
}

/// close_range(2): close every descriptor from `first` to `last`, or with
/// `cloexec` only mark them close-on-exec. False when the kernel (before
/// Linux 5.9) or the platform has no such call: the caller then goes
/// through the open descriptors one by one.
///
/// Closing is for a freshly forked child (`runtime::supervise`), which
/// never returns into the code that owned those descriptors.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn close_range(first: u32, last: u32, cloexec: bool) -> bool {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC as libc::c_int
    } else {
        0
    };
    // SAFETY: close_range takes integers only and touches no memory; the
    // descriptors it closes are never used again by the caller (see above),
    // and marking descriptors close-on-exec changes nothing in this process.
    unsafe { libc::close_range(first, last, flags) == 0 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn close_range(_first: u32, _last: u32, _cloexec: bool) -> bool {
    false
}

/// Which side of a fork we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2). Only `runtime::supervise` calls it: every child of the suite is
/// started there, with its signals reset and its descriptors closed.
///
/// # Safety
/// The calling process must have a single thread: the child gets a copy of
/// the calling thread alone, and a lock held by any other thread (malloc's,
/// the logger's) would stay locked in it for ever.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees a single-threaded process (see above).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(e.into()),
    }
}

/// Take ownership of an inherited descriptor (inetd's fd 0, systemd's fd 3..).
/// Returns None when the descriptor is not open.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return None;
    }
    // SAFETY: the descriptor is open (F_GETFD succeeded) and was handed to us
    // by our parent (inetd or systemd); nothing else in the process owns it,
    // because callers take each inherited number once, at start-up.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An inherited descriptor as a connected TCP stream.
pub fn tcp_stream_from(fd: OwnedFd) -> TcpStream {
    TcpStream::from(fd)
}

/// An inherited descriptor as a listening TCP socket.
pub fn tcp_listener_from(fd: OwnedFd) -> TcpListener {
    TcpListener::from(fd)
}

/// An inherited descriptor as a UDP socket.
pub fn udp_socket_from(fd: OwnedFd) -> UdpSocket {
    UdpSocket::from(fd)
}

/// Most descriptors one message may carry.
pub const MAX_FDS: usize = 4;

/// Send `data` with descriptors attached (SCM_RIGHTS) over a Unix socket:
/// a connection handed to a reusable session, a socket bound to a reserved
/// port, the end of a relay. On a SOCK_SEQPACKET socket it is one message.
pub fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    if sent != data.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "message cut short",
        ));
    }
    Ok(())
}

/// Receive one message into `buf` with the descriptors that came with it
/// (at most MAX_FDS; any more are closed). A message longer than `buf` is
/// an error, not a silent truncation. Ok((0, _)) is the end of the stream.
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel just installed this descriptor in our
                // table for this message; nothing else knows its number, so
                // the OwnedFd is its only owner (extra ones are dropped,
                // which closes them).
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if fds.len() < MAX_FDS {
                    fds.push(owned);
                }
            }
        }
    }
    let truncated = msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too long",
        ));
    }
    Ok((msg.bytes, fds))
}

/// Send one byte and one descriptor (the master's hand-off of a connection).
pub fn send_fd(sock: BorrowedFd<'_>, byte: u8, fd: BorrowedFd<'_>) -> io::Result<()> {
    send_with_fds(sock, &[byte], &[fd.as_raw_fd()])
}

/// Receive one byte and the descriptor sent with it, if one came.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<(u8, Option<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let (n, fds) = recv_with_fds(sock, &mut byte)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((byte[0], fds.into_iter().next()))
}

/// yescrypt, Debian's default password hash, takes 16 MiB of scratch memory
/// from a fresh mmap on every call. With transparent huge pages in their
/// default `madvise` mode the kernel then faults it in 4 KiB at a time:
/// 4,100 page faults, about as much CPU as the hash itself, which caps
/// logins per second. While our crypt call runs, large private anonymous
/// maps are advised MADV_HUGEPAGE: the same memory and the same work for the
/// hash, with 512 times fewer faults.
///
/// libcrypt calls `mmap` through the dynamic linker, and an executable's own
/// definition comes first (build.rs exports ours). Outside crypt it is
/// exactly libc's mmap: the system call with the caller's arguments. That
/// holds only where the raw system call is what glibc's `mmap` makes: on
/// 64-bit Linux, where `SYS_mmap` takes the offset in bytes. On 32-bit
/// targets glibc uses `mmap2` (offset in pages) and i386's `SYS_mmap` takes
/// a pointer to a block of arguments, so there the override is not built
/// (build.rs exports the symbol under the same condition) and yescrypt runs with
/// the kernel's own page-size faults.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
mod crypt_scratch {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// How many callers want the advice now.
    static ADVISE: AtomicUsize = AtomicUsize::new(0);
    const HUGE_PAGE: usize = 2 << 20;

    /// Advice on while it lives.
    pub struct HugePages;

    impl HugePages {
        pub fn advise() -> HugePages {
            // Keeps the interposer in the binary (an unreferenced symbol of
            // a library may be dropped by the linker).
            std::hint::black_box(mmap as *const ());
            ADVISE.fetch_add(1, Ordering::SeqCst);
            HugePages
        }
    }

    impl Drop for HugePages {
        fn drop(&mut self) {
            ADVISE.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// # Safety
    /// mmap(2)'s own contract; only libc's callers reach it.
    #[no_mangle]
    unsafe extern "C" fn mmap(
        addr: *mut libc::c_void,
        len: libc::size_t,
        prot: libc::c_int,
        flags: libc::c_int,
        fd: libc::c_int,
        offset: libc::off_t,
    ) -> *mut libc::c_void {
        // SAFETY: the mmap system call with the caller's own arguments, which
        // is all glibc's wrapper does on 64-bit Linux (errno is set by
        // syscall(3) on failure and MAP_FAILED is its -1).
        let p = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, offset) }
            as *mut libc::c_void;
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if p != libc::MAP_FAILED
            && len >= HUGE_PAGE
            && flags & anon == anon
            && ADVISE.load(Ordering::Relaxed) > 0
        {
            // SAFETY: advice on the range just mapped, which only this call
            // knows; a failure leaves the mapping as it is.
            unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
        }
        p
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
mod crypt_scratch {
    pub struct HugePages;
    impl HugePages {
        pub fn advise() -> HugePages {
            HugePages
        }
    }
}

/// Run `f` (a PAM conversation: pam_unix hashes with libcrypt in this
/// process) with yescrypt's scratch memory in huge pages, as crypt_hash does.
pub fn with_huge_crypt_scratch<T>(f: impl FnOnce() -> T) -> T {
    let _huge = crypt_scratch::HugePages::advise();
    f()
}

/// Put a signal back to its default disposition (in a freshly forked session
/// the master's handlers must not run).
pub fn default_signal(sig: Signal) {
    // SAFETY: SIG_DFL installs no Rust code as a handler, so no handler can
    // run in an async-signal context with broken invariants.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
}

/// In a freshly forked child: every signal back to its default disposition
/// (the parent's handlers write to the parent's wake-up pipes and flags,
/// which mean nothing here), SIGPIPE ignored (a vanished peer is an EPIPE
/// error, not death), and nothing blocked.
pub fn reset_signals() {
    for sig in Signal::iterator() {
        match sig {
            Signal::SIGKILL | Signal::SIGSTOP => {}
            Signal::SIGPIPE => ignore_signal(sig),
            _ => default_signal(sig),
        }
    }
    let _ = signal::sigprocmask(
        signal::SigmaskHow::SIG_SETMASK,
        Some(&signal::SigSet::empty()),
        None,
    );
}

/// Ignore a signal (SIGPIPE: a vanished client is an EPIPE error, not death).
pub fn ignore_signal(sig: Signal) {
    // SAFETY: SIG_IGN installs no handler code at all.
    let _ = unsafe { signal::signal(sig, SigHandler::SigIgn) };
}

#[link(name = "crypt")]
extern "C" {
    fn crypt(key: *const libc::c_char, salt: *const libc::c_char) -> *mut libc::c_char;
}

/// crypt(3) serialises on this lock: it returns a pointer to static storage.
static CRYPT_LOCK: Mutex<()> = Mutex::new(());

/// Hash `password` with the method and salt in `setting` (a full hash works:
/// crypt reads only the setting part). None when libcrypt refuses the
/// setting (unknown method, malformed salt) or the inputs contain NUL.
pub fn crypt_hash(password: &str, setting: &str) -> Option<String> {
    let key = CString::new(password).ok()?;
    let salt = CString::new(setting).ok()?;
    let _guard = CRYPT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _huge = crypt_scratch::HugePages::advise();
    // SAFETY: both arguments are valid NUL-terminated strings that outlive the
    // call; the result points to libcrypt's static buffer, which the lock
    // above keeps from being overwritten until we have copied it.
    let out = unsafe { crypt(key.as_ptr(), salt.as_ptr()) };
    if out.is_null() {
        return None;
    }
    // SAFETY: a non-null result is a NUL-terminated string in static storage.
    let hash = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // libxcrypt signals failure with a string starting with '*'.
    if hash.starts_with('*') {
        None
    } else {
        Some(hash)
    }
}

/// What `fcntl_lock` takes on a whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordLock {
    Read,
    Write,
    Unlock,
}

/// Try (without waiting) to take or release a POSIX record lock on the
/// whole file (what mail programs agree on for mbox files besides dot
/// locks). `struct flock` has different fields on each system, so it is
/// made here, zeroed, and only the portable fields set.
pub fn fcntl_lock_whole(fd: RawFd, lock: RecordLock) -> io::Result<()> {
    // SAFETY: flock is plain old data; all-zero is a valid value (start 0,
    // length 0: the whole file).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = match lock {
        RecordLock::Read => libc::F_RDLCK,
        RecordLock::Write => libc::F_WRLCK,
        RecordLock::Unlock => libc::F_UNLCK,
    } as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: F_SETLK reads one flock struct through the pointer, which
    // points to a live, initialised local.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLK, &fl as *const libc::flock) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Have the kernel send `sig` to this process when its parent ends (a
/// queue runner or worker must not outlive the master). Where the system
/// has no such thing, nothing happens.
pub fn die_with_parent(sig: Signal) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = nix::sys::prctl::set_pdeathsig(sig);
    }
    #[cfg(target_os = "freebsd")]
    {
        let mut signo: libc::c_int = sig as libc::c_int;
        // SAFETY: PROC_PDEATHSIG_CTL on our own pid (P_PID, 0) reads one int
        // through the pointer, which points to a live local.
        unsafe {
            libc::procctl(
                libc::P_PID,
                0,
                libc::PROC_PDEATHSIG_CTL,
                &mut signo as *mut libc::c_int as *mut libc::c_void,
            );
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let _ = sig;
    }
}

/// Set the window size of the terminal on `fd`.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct through the pointer, which
    // points to a live, initialised local.
    #[allow(clippy::useless_conversion)]
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ.into(), &ws as *const libc::winsize) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The name the resolver gives an address (getnameinfo(3) with
/// NI_NAMEREQD): None when it has none. Not to be trusted as such: the
/// caller confirms it with a forward lookup (see `auth::trust`).
pub fn name_of(addr: std::net::IpAddr) -> Option<String> {
    let sa = socket2::SockAddr::from(std::net::SocketAddr::new(addr, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `sa` is a valid socket address of `sa.len()` bytes; `host` is
    // a writable buffer whose length is passed; no service is asked for
    // (null pointer, length 0). getnameinfo NUL-terminates what it writes.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            // socklen_t on Linux, size_t on the BSDs.
            host.len() as _,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

extern "C" {
    fn innetgr(
        netgroup: *const libc::c_char,
        host: *const libc::c_char,
        user: *const libc::c_char,
        domain: *const libc::c_char,
    ) -> libc::c_int;
}

/// innetgr(3): whether the (host, user) pair is a member of `group` (a
/// None field matches any). False for names with a NUL.
pub fn in_netgroup(group: &str, host: Option<&str>, user: Option<&str>) -> bool {
    let cs = |s: Option<&str>| s.map(CString::new).transpose();
    let (Ok(group), Ok(host), Ok(user)) = (CString::new(group), cs(host), cs(user)) else {
        return false;
    };
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null (a wildcard, as innetgr allows)
    // or a NUL-terminated string that outlives the call; innetgr only reads
    // them. The netgroup database's cursor is libc's, and the monitor that
    // calls this is single-threaded.
    unsafe { innetgr(group.as_ptr(), ptr(&host), ptr(&user), std::ptr::null()) == 1 }
}

/// A login record for utmp/wtmp.
pub struct LoginRecord<'a> {
    pub user: &'a str,
    /// The terminal without "/dev/", e.g. "pts/3".
    pub line: &'a str,
    pub host: &'a str,
    pub pid: i32,
}

#[cfg(target_os = "linux")]
fn copy_field(dst: &mut [libc::c_char], src: &str) {
    for (d, s) in dst.iter_mut().zip(src.bytes().chain(std::iter::repeat(0))) {
        *d = s as libc::c_char;
    }
}

/// Write a USER_PROCESS (login) or DEAD_PROCESS (logout) record to utmp, and
/// append it to wtmp. Failures are ignored: accounting must never block a
/// login.
#[cfg(target_os = "linux")]
pub fn write_utmp(rec: &LoginRecord, login: bool) {
    // SAFETY: utmpx is plain old data; all-zero is a valid value.
    let mut ut: libc::utmpx = unsafe { std::mem::zeroed() };
    ut.ut_type = if login {
        libc::USER_PROCESS
    } else {
        libc::DEAD_PROCESS
    };
    ut.ut_pid = rec.pid;
    copy_field(&mut ut.ut_line, rec.line);
    let id = rec.line.rsplit('/').next().unwrap_or(rec.line);
    copy_field(&mut ut.ut_id, id);
    if login {
        copy_field(&mut ut.ut_user, rec.user);
        copy_field(&mut ut.ut_host, rec.host);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ut.ut_tv.tv_sec = now.as_secs() as _;
    ut.ut_tv.tv_usec = now.subsec_micros() as _;
    // SAFETY: the utmpx functions take a pointer to a valid record that lives
    // across the calls; setutxent/endutxent bracket libc's internal cursor,
    // and sessions are single-threaded when they log in or out.
    unsafe {
        libc::setutxent();
        libc::pututxline(&ut);
        libc::endutxent();
    }
    let wtmp = c"/var/log/wtmp";
    // SAFETY: as above; updwtmpx copies the record into the named file.
    unsafe { updwtmpx(wtmp.as_ptr(), &ut) };
}

#[cfg(target_os = "linux")]
extern "C" {
    fn updwtmpx(file: *const libc::c_char, ut: *const libc::utmpx);
}

#[cfg(not(target_os = "linux"))]
pub fn write_utmp(_rec: &LoginRecord, _login: bool) {}

/// The name the resolver gives for `ip` (getnameinfo with NI_NAMEREQD:
/// a reverse lookup through NSS, DNS or /etc/hosts), None when it has
/// none. Not checked: see `host::confirmed_name` for the forward check.
pub fn name_of_address(ip: std::net::IpAddr) -> Option<String> {
    let sa = socket2::SockAddr::from(std::net::SocketAddr::new(ip, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: the address pointer and length come from a live SockAddr;
    // the host buffer is a live local array whose length is passed; no
    // service buffer is asked for (null, 0). getnameinfo writes at most
    // that many bytes, NUL-terminated, into `host`.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as _, // socklen_t on Linux, size_t on FreeBSD
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo left a NUL-terminated string in
    // `host`, which lives until the end of this function.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

/// Something that names the running boot and changes at the next one:
/// what was written to the page cache under one boot id and not lost
/// since is still there (or on disk) while the id is the same. None where
/// the system does not say (callers then assume a crash may have come
/// between).
#[cfg(target_os = "linux")]
pub fn boot_id() -> Option<String> {
    let s = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id: String = s.trim().chars().filter(|c| *c != '-').collect();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The BSDs: the boot time, `kern.boottime` (it moves when the clock is
/// stepped, which only makes a caller more careful, never less).
#[cfg(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
))]
pub fn boot_id() -> Option<String> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>();
    // SAFETY: the name is a NUL-terminated literal; `tv` is a writable
    // timeval of `len` bytes that lives across the call, and sysctlbyname
    // writes at most `len` bytes to it (and the length it wrote to `len`);
    // no new value is given (null pointer, length 0).
    let r = unsafe {
        libc::sysctlbyname(
            c"kern.boottime".as_ptr(),
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (r == 0 && len == std::mem::size_of::<libc::timeval>())
        .then(|| format!("bt{}x{}", tv.tv_sec, tv.tv_usec))
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
)))]
pub fn boot_id() -> Option<String> {
    None
}

/// Keep freed memory for reuse instead of giving it back at once: for a
/// process that allocates and frees the same large buffers batch after
/// batch (nntpd's articles and journal records), glibc otherwise shrinks
/// the heap after each batch (or unmaps a buffer above its mmap
/// threshold) and every page is faulted in again by the next. Up to
/// `keep` bytes stay. Elsewhere, nothing.
pub fn keep_freed_memory(keep: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let keep = libc::c_int::try_from(keep).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes two integers and only sets the
        // allocator's tuning parameters (under its lock); it touches no
        // memory of ours.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, keep);
            libc::mallopt(libc::M_MMAP_THRESHOLD, keep);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = keep;
}

/// Give the allocator's free memory back to the system (glibc keeps what
/// a process freed, and after a fork each process holds its own copy):
/// for a process about to wait a long time with little live data, such
/// as a session's monitor and relay. Elsewhere, nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a size and no pointer; it only walks the
    // allocator's own free lists (under its lock) and advises the kernel
    // about whole free pages. No memory this program uses is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Make the terminal on `fd` the controlling terminal of this process, the
/// leader of a session that has none (after setsid).
pub fn set_controlling_terminal(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal the
    // terminal from another session) and no pointer.
    #[allow(clippy::useless_conversion)]
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSCTTY.into(), 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Spawn `cmd` as the leader of a new session whose controlling terminal is
/// the terminal on its standard input (set up by the caller). For tests,
/// which run programs with std's Command; the daemons start programs
/// through `pty::spawn` and the supervisor.
#[cfg(test)]
pub fn spawn_session_leader(cmd: &mut std::process::Command) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (setsid, ioctl); it allocates nothing and
    // takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            #[allow(clippy::useless_conversion)]
            if libc::ioctl(0, libc::TIOCSCTTY.into(), 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_sha512_round_trip() {
        let setting = "$6$saltsalt$";
        let hash = crypt_hash("secret", setting).expect("sha512 supported");
        assert!(hash.starts_with("$6$saltsalt$"));
        assert_eq!(crypt_hash("secret", &hash).as_deref(), Some(hash.as_str()));
        assert_ne!(crypt_hash("wrong", &hash).as_deref(), Some(hash.as_str()));
    }

    /// A yescrypt hash made by the system's own libcrypt (Python's crypt).
    const YESCRYPT: &str =
        "$y$j9T$JqQbl8ZEXf9rmU4xEv5PO0$q3IGakd1H1nB3mWhq9cdtnOtLVFhVjpHiJbNIYjOnQ.";

    #[test]
    fn yescrypt_is_right_and_its_scratch_gets_huge_pages() {
        use nix::sys::resource::{getrusage, UsageWho};
        let faults = || getrusage(UsageWho::RUSAGE_THREAD).map_or(0, |u| u.minor_page_faults());
        let before = faults();
        assert_eq!(
            crypt_hash("bench-Pw-1", YESCRYPT).as_deref(),
            Some(YESCRYPT)
        );
        let taken = faults() - before;
        assert_ne!(
            crypt_hash("bench-Pw-2", YESCRYPT).as_deref(),
            Some(YESCRYPT)
        );
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        if cfg!(all(
            target_os = "linux",
            target_env = "gnu",
            target_pointer_width = "64"
        )) && thp.is_ok_and(|t| !t.contains("[never]"))
        {
            // 16 MiB in 4 KiB pages would be 4,096 faults.
            assert!(taken < 1500, "{taken} page faults for one yescrypt hash");
        }
    }

    #[test]
    fn crypt_rejects_garbage_setting() {
        assert_eq!(crypt_hash("x", "$99$nonsense"), None);
    }
}
