//! The relay against real pseudo-terminals, real programs (sh, stty, perl)
//! and real sockets: loopback TCP for urgent data, a Unix socket pair.

use super::*;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::socket::{send, MsgFlags};
use nix::sys::termios::SpecialCharacterIndices;

const WAIT: Duration = Duration::from_secs(15);

/// `sh -c script` on a fresh pty, killed and reaped if a test fails.
struct Program {
    child: Child,
    master: Option<File>,
    /// A copy of the slave kept open by the test: the terminal then never
    /// hangs up, so only the pid watch can end the relay.
    slave: Option<File>,
}

impl Program {
    fn start(script: &str) -> Program {
        Program::start_with(script, false)
    }

    fn start_holding_slave(script: &str) -> Program {
        Program::start_with(script, true)
    }

    fn start_with(script: &str, hold_slave: bool) -> Program {
        let (master, slave, _) = open(24, 80).unwrap();
        let slave = File::from(slave);
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        let child = sys::spawn_session_leader(&mut cmd).unwrap();
        drop(cmd);
        Program {
            child,
            master: Some(File::from(master)),
            slave: hold_slave.then_some(slave),
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn watch(&self) -> ChildWatch {
        ChildWatch::Pid(self.pid())
    }

    fn take_master(&mut self) -> File {
        self.master.take().unwrap()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the program did not end");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        drop(self.slave.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

type Finished<F> = (io::Result<Outcome>, F, File);

fn start_relay<C, F>(
    mut conn: C,
    master: File,
    child: ChildWatch,
    mut filter: F,
    config: RelayConfig,
) -> JoinHandle<Finished<F>>
where
    C: AsFd + Read + Write + Send + 'static,
    F: Filter + Send + 'static,
{
    thread::spawn(move || {
        let result = relay(&mut conn, master.as_fd(), child, &mut filter, &config);
        // The connection closes here: the client reads to EOF.
        (result, filter, master)
    })
}

fn join<F>(handle: JoinHandle<Finished<F>>) -> Finished<F> {
    let deadline = Instant::now() + WAIT;
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "the relay did not end");
        thread::sleep(Duration::from_millis(10));
    }
    handle.join().unwrap()
}

/// A loopback TCP connection: (client, server).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nodelay(true).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    (client, server)
}

/// A loopback TCP connection with small socket buffers, so that what the
/// kernel can hold does not hide what the relay holds.
fn small_tcp_pair() -> (TcpStream, TcpStream) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    // Set before the connection exists, so that the accepted socket has
    // them and no window is negotiated beyond them.
    listener.set_recv_buffer_size(32 * 1024).unwrap();
    listener.set_send_buffer_size(32 * 1024).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(1).unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client.set_send_buffer_size(32 * 1024).unwrap();
    client.set_recv_buffer_size(32 * 1024).unwrap();
    client.connect(&listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let client = TcpStream::from(client);
    client.set_read_timeout(Some(WAIT)).unwrap();
    (client, TcpStream::from(server))
}

/// Read until `needle` shows up in what was read; returns everything read.
fn read_until(conn: &mut impl Read, got: &mut Vec<u8>, needle: &[u8]) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !got.windows(needle.len()).any(|w| w == needle) {
        assert!(
            Instant::now() < deadline,
            "no {:?} in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(got)
        );
        match conn.read(&mut buf) {
            Ok(0) => panic!(
                "EOF before {:?} in {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn read_to_end(conn: &mut impl Read, got: &mut Vec<u8>) {
    conn.read_to_end(got).unwrap();
}

/// Pseudo-random bytes, all 256 values.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("classicd-relay-{}-{name}", std::process::id()))
}

/// Gone, or a zombie waiting for a parent that is not us.
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + WAIT;
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still there");
        thread::sleep(Duration::from_millis(20));
    }
}

fn config() -> RelayConfig {
    RelayConfig::default()
}

/// A test protocol. Client bytes pass to the terminal, except escapes:
/// `01 'w' rows cols` resize, `01 's' signo` signal, `01 'e'` reply and
/// end, `01 'x'` external processing on, `01 'o'` discard output, `01 'r'`
/// a reply. It records what it was given.
#[derive(Default)]
struct Recorder {
    /// Every client byte taken, in order.
    stream: Vec<u8>,
    /// Offsets in `stream` of urgent bytes.
    marks: Vec<usize>,
    /// Offsets in `stream` of bytes taken while a mark was ahead.
    ahead: Vec<usize>,
    notices: usize,
    controls: Vec<u8>,
    /// Echo on, as seen by `on_packet_control` through the terminal modes.
    echo_seen: Vec<bool>,
    /// Take client bytes without passing them on.
    swallow: bool,
    /// TELNET SYNCH: after an urgent notice, drop data up to the mark.
    synch: bool,
    discarding: bool,
    /// This byte of the terminal's output goes out as urgent data.
    urgent_in_output: Option<u8>,
}

impl Recorder {
    fn record(&mut self, bytes: &[u8], at: usize, urgent: UrgentMark) {
        let base = self.stream.len();
        for k in 0..bytes.len() {
            match urgent {
                UrgentMark::At(m) if m == at + k => self.marks.push(base + k),
                UrgentMark::At(m) if at + k < m => self.ahead.push(base + k),
                UrgentMark::Ahead => self.ahead.push(base + k),
                _ => {}
            }
        }
        self.stream.extend_from_slice(bytes);
    }
}

impl Filter for Recorder {
    fn on_network(&mut self, input: &[u8], urgent: UrgentMark, out: &mut Outputs) -> usize {
        let mut i = 0;
        while i < input.len() {
            if self.discarding {
                // Up to and with the mark, if it is in this input.
                let upto = match urgent {
                    UrgentMark::At(m) => m + 1,
                    _ => input.len(),
                };
                self.record(&input[i..upto], i, urgent);
                i = upto;
                if matches!(urgent, UrgentMark::At(_)) {
                    self.discarding = false;
                }
                continue;
            }
            if input[i] == 1 {
                let need = match input.get(i + 1) {
                    None => break,
                    Some(b'w') => 4,
                    Some(b's') => 3,
                    Some(_) => 2,
                };
                if input.len() < i + need {
                    break; // the rest of the escape comes later
                }
                let esc = &input[i..i + need];
                match esc[1] {
                    b'w' => out
                        .resize(WindowSize {
                            rows: esc[2].into(),
                            cols: esc[3].into(),
                            xpixel: u16::from(esc[2]) * 10,
                            ypixel: u16::from(esc[3]) * 10,
                        })
                        .unwrap(),
                    b's' => out
                        .signal(Signal::try_from(i32::from(esc[2])).unwrap())
                        .unwrap(),
                    b'e' => {
                        if !out.reply(b"bye\r\n") {
                            break;
                        }
                        out.end();
                    }
                    b'x' => out.set_external_processing(true).unwrap(),
                    b'o' => out.discard_output(),
                    b'r' if !out.reply(b"<R>") => break,
                    _ => {}
                }
                self.record(esc, i, urgent);
                i += need;
                continue;
            }
            let end = input[i..]
                .iter()
                .position(|&b| b == 1)
                .map_or(input.len(), |p| i + p);
            let n = if self.swallow {
                end - i
            } else {
                (end - i).min(out.terminal_room())
            };
            if n == 0 {
                break; // no room: the relay calls again later
            }
            if !self.swallow {
                assert!(out.to_terminal(&input[i..i + n]));
            }
            self.record(&input[i..i + n], i, urgent);
            i += n;
        }
        i
    }

    fn on_urgent(&mut self, _out: &mut Outputs) {
        self.notices += 1;
        if self.synch {
            self.discarding = true;
        }
    }

    fn on_terminal(&mut self, output: &[u8], out: &mut Outputs) -> usize {
        let Some(u) = self.urgent_in_output else {
            let n = output.len().min(out.network_room());
            assert!(out.to_network(&output[..n]));
            return n;
        };
        let mut taken = 0;
        for &b in output {
            let fits = if b == u {
                out.urgent(b)
            } else {
                out.to_network(&[b])
            };
            if !fits {
                break;
            }
            taken += 1;
        }
        taken
    }

    fn on_packet_control(&mut self, control: PacketControl, out: &mut Outputs) {
        self.controls.push(control.0);
        self.echo_seen.push(out.terminal_modes().unwrap().echo());
    }
}

#[test]
fn bytes_pass_both_ways_and_a_hangup_ends_the_relay() {
    let mut program = Program::start("stty -echo; echo ready; read line; echo \"got:$line\"");
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        ChildWatch::None,
        Passthrough,
        config(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\r\n");
    client.write_all(b"hello\n").unwrap();
    read_to_end(&mut client, &mut got);
    assert!(got.ends_with(b"got:hello\r\n"), "{got:?}");
    let (outcome, _, _) = join(relay);
    let outcome = outcome.unwrap();
    // Nothing watched the pid: the slave closing ended it.
    assert_eq!(outcome.end, End::Hangup);
    assert_eq!(outcome.unsent, 0);
    assert_eq!(outcome.from_network, 6);
    assert_eq!(outcome.to_network, got.len() as u64);
    assert!(program.wait().success());
}

#[test]
fn typeahead_goes_first() {
    let mut program = Program::start("stty -echo; read a; read b; echo \"got:$a,$b\"");
    let (mut client, mut server) = tcp_pair();
    let master = program.take_master();
    let watch = program.watch();
    let relay = thread::spawn(move || {
        let result = relay_with_typeahead(
            &mut server,
            master.as_fd(),
            watch,
            &mut Passthrough,
            &config(),
            b"first\n",
        );
        (result, master)
    });
    client.write_all(b"second\n").unwrap();
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"got:first,second\r\n");
    drop(client);
    let (outcome, master) = relay.join().unwrap();
    outcome.unwrap();
    drop(master);
    program.wait();
}

#[test]
fn a_unix_socket_works_as_the_connection() {
    let mut program = Program::start("read line; echo \"got:$line\"");
    let (mut client, server) = UnixStream::pair().unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        config(),
    );
    client.write_all(b"over unix\n").unwrap();
    let mut got = Vec::new();
    read_to_end(&mut client, &mut got);
    assert!(got.ends_with(b"got:over unix\r\n"), "{got:?}");
    let (outcome, _, _) = join(relay);
    let end = outcome.unwrap().end;
    assert!(matches!(end, End::ChildExited | End::Hangup), "{end:?}");
    assert!(program.wait().success());
}

#[test]
fn a_client_flood_is_held_back_and_arrives_whole() {
    const LEN: usize = 4 << 20;
    let data = pattern(LEN);
    let path = temp_path("client-flood");
    let script = format!(
        "stty raw -echo -iexten; echo ready; sleep 2; head -c {LEN} > '{}'; echo done",
        path.display()
    );
    let mut program = Program::start(&script);
    let (mut client, server) = small_tcp_pair();
    let cfg = config();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        cfg.clone(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\n");

    // The program is asleep: write until nothing more goes, for a while.
    client.set_nonblocking(true).unwrap();
    let mut written = 0;
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_millis(400) {
        match client.write(&data[written..]) {
            Ok(n) => {
                written += n;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Held: the socket buffers, the relay's and the terminal's, no more.
    assert!(
        written < 1 << 20,
        "{written} bytes went in before the program read"
    );
    assert_eq!(program.child.try_wait().unwrap(), None);

    client.set_nonblocking(false).unwrap();
    client.write_all(&data[written..]).unwrap();
    read_until(&mut client, &mut got, b"done\n");
    let (outcome, _, _) = join(relay);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.from_network, LEN as u64);
    assert!(outcome.peak_buffered <= 4 * cfg.buffer_size, "{outcome:?}");
    let arrived = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        arrived == data,
        "the program got {} bytes, not the same",
        arrived.len()
    );
    assert!(program.wait().success());
}

#[test]
fn a_program_flood_is_held_back_and_arrives_whole() {
    const LEN: usize = 4 << 20;
    let data = pattern(LEN);
    let path = temp_path("program-flood");
    std::fs::write(&path, &data).unwrap();
    let script = format!("stty raw -echo; echo ready; cat '{}'", path.display());
    let mut program = Program::start(&script);
    let (mut client, server) = small_tcp_pair();
    let cfg = config();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        cfg.clone(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\n");
    // The client stops reading: the program must block, not the relay grow.
    thread::sleep(Duration::from_millis(700));
    assert_eq!(program.child.try_wait().unwrap(), None, "cat finished");
    read_to_end(&mut client, &mut got);
    let _ = std::fs::remove_file(&path);
    let start = got.windows(6).position(|w| w == b"ready\n").unwrap() + 6;
    assert!(
        got[start..] == data[..],
        "{} bytes arrived",
        got.len() - start
    );
    let (outcome, _, _) = join(relay);
    let outcome = outcome.unwrap();
    assert!(matches!(outcome.end, End::ChildExited | End::Hangup));
    assert!(outcome.peak_buffered <= 4 * cfg.buffer_size, "{outcome:?}");
    assert_eq!(outcome.unsent, 0);
    assert!(program.wait().success());
}

#[test]
fn a_reply_flood_to_a_client_that_does_not_read_is_held_back_whole() {
    // CVE-2020-10188's shape: thousands of requests that each want an
    // answer, from a client that never reads the answers.
    const REQUESTS: usize = 1_000_000;
    let requests = [1, b'r'].repeat(REQUESTS);
    let mut program = Program::start("exec sleep 30");
    let (mut client, server) = small_tcp_pair();
    let cfg = config();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        cfg.clone(),
    );
    client.set_nonblocking(true).unwrap();
    let mut written = 0;
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_millis(400) {
        match client.write(&requests[written..]) {
            Ok(n) => {
                written += n;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        written < requests.len() / 2,
        "{written} bytes of requests taken"
    );
    // Now the client reads: every answer arrives, none was dropped.
    client.set_nonblocking(false).unwrap();
    let mut reader = client.try_clone().unwrap();
    let answers = thread::spawn(move || {
        let mut got = vec![0u8; 3 * REQUESTS];
        reader.read_exact(&mut got).unwrap();
        got
    });
    client.write_all(&requests[written..]).unwrap();
    let got = answers.join().unwrap();
    assert!(got == b"<R>".repeat(REQUESTS));
    drop(client);
    let (outcome, _, master) = join(relay);
    let outcome = outcome.unwrap();
    assert!(outcome.peak_buffered <= 4 * cfg.buffer_size, "{outcome:?}");
    drop(master);
    program.wait();
}

#[test]
fn discarding_output_drops_data_and_keeps_replies() {
    const LEN: usize = 1 << 20;
    let path = temp_path("discard");
    std::fs::write(&path, vec![b'x'; LEN]).unwrap();
    let script = format!(
        "stty raw -echo; echo ready; cat '{}'; echo END",
        path.display()
    );
    let mut program = Program::start(&script);
    let (mut client, server) = small_tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        config(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\n");
    // Everything on the way fills up while the client does not read.
    thread::sleep(Duration::from_millis(300));
    client.write_all(&[1, b'r', 1, b'o', 1, b'r']).unwrap();
    read_to_end(&mut client, &mut got);
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&got);
    // The replies wait for room like everything else (the client is not
    // reading), then both arrive: the terminal output queued when the
    // discard came is dropped, the reply queued before it is not.
    assert!(text.contains("<R><R>"), "{}", &text[..60.min(text.len())]);
    assert!(text.matches('x').count() < LEN, "nothing was discarded");
    // The output written after the discard still comes, whole.
    assert!(text.ends_with("END\n"), "{}", &text[text.len() - 20..]);
    drop(client);
    join(relay).0.unwrap();
    program.wait();
}

#[test]
fn a_window_size_change_reaches_the_program() {
    let mut program =
        Program::start("trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done");
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        config(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\r\n");
    // Split across two writes: the filter waits for the whole escape.
    client.write_all(&[1, b'w']).unwrap();
    thread::sleep(Duration::from_millis(50));
    client.write_all(&[50, 132]).unwrap();
    read_until(&mut client, &mut got, b"50 132\r\n");
    let (outcome, _, master) = join(relay);
    outcome.unwrap();
    let size = window_size(master.as_fd()).unwrap();
    assert_eq!(
        size,
        WindowSize {
            rows: 50,
            cols: 132,
            xpixel: 500,
            ypixel: 1320
        }
    );
    assert!(program.wait().success());
}

#[test]
fn a_signal_reaches_a_raw_mode_program() {
    let mut program = Program::start(
        "stty raw -echo; trap 'echo INT; exit 0' INT; trap 'echo USR1' USR1; \
         echo ready; while :; do sleep 0.05; done",
    );
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        config(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\n");
    // In raw mode ^C is just a byte.
    client.write_all(&[3]).unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(program.child.try_wait().unwrap(), None);
    // SIGUSR1 goes by killpg (Linux's TIOCSIG takes only INT, QUIT, TSTP).
    client.write_all(&[1, b's', Signal::SIGUSR1 as u8]).unwrap();
    read_until(&mut client, &mut got, b"USR1\n");
    client.write_all(&[1, b's', Signal::SIGINT as u8]).unwrap();
    read_until(&mut client, &mut got, b"INT\n");
    join(relay).0.unwrap();
    assert!(program.wait().success());
}

#[test]
fn urgent_data_from_the_client_is_placed_in_the_stream() {
    let mut program = Program::start("exec sleep 30");
    let (client, server) = tcp_pair();
    // All of it is in the server's socket before the relay looks.
    (&client).write_all(b"abc").unwrap();
    send(client.as_raw_fd(), b"!", MsgFlags::MSG_OOB).unwrap();
    (&client).write_all(b"def").unwrap();
    thread::sleep(Duration::from_millis(100));
    let filter = Recorder {
        swallow: true,
        ..Recorder::default()
    };
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        filter,
        config(),
    );
    thread::sleep(Duration::from_millis(300));
    drop(client);
    let (outcome, filter, master) = join(relay);
    assert_eq!(outcome.unwrap().end, End::ClientClosed);
    drop(master);
    // Nothing lost or moved: the urgent byte is in place, and flagged.
    assert_eq!(filter.stream, b"abc!def");
    assert_eq!(filter.marks, vec![3]);
    assert_eq!(filter.ahead, vec![0, 1, 2]);
    assert_eq!(filter.notices, 1);
    program.wait();
}

#[test]
fn a_synch_reaches_the_filter_while_its_input_is_held_back() {
    // The program never reads: the terminal, then the relay fill up, and
    // the relay stops reading the client. The urgent notice must still
    // come through, so that TELNET can discard up to the mark.
    const LEN: usize = 120_000;
    let mut program = Program::start("stty raw -echo; echo ready; exec sleep 30");
    let (mut client, server) = tcp_pair();
    let filter = Recorder {
        synch: true,
        ..Recorder::default()
    };
    let cfg = RelayConfig {
        buffer_size: 4096,
        ..config()
    };
    let relay = start_relay(server, program.take_master(), program.watch(), filter, cfg);
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"ready\n");
    client.write_all(&vec![b'x'; LEN]).unwrap();
    thread::sleep(Duration::from_millis(300));
    send(client.as_raw_fd(), b"!", MsgFlags::MSG_OOB).unwrap();
    client.write_all(b"after").unwrap();
    thread::sleep(Duration::from_millis(500));
    drop(client);
    let (outcome, filter, master) = join(relay);
    assert_eq!(outcome.unwrap().end, End::ClientClosed);
    drop(master);
    assert_eq!(filter.notices, 1);
    assert_eq!(filter.marks, vec![LEN]);
    assert!(!filter.discarding);
    program.wait();
}

#[test]
fn urgent_data_to_the_client_keeps_its_place() {
    let mut program = Program::start("stty raw -echo; printf 'ab#cd'; exec sleep 30");
    let (client, server) = tcp_pair();
    let filter = Recorder {
        urgent_in_output: Some(b'#'),
        ..Recorder::default()
    };
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        filter,
        config(),
    );
    nix::sys::socket::setsockopt(&client, nix::sys::socket::sockopt::OobInline, &true).unwrap();
    // Wait for the urgent notice; the bytes before it are there by then.
    let mut fds = [nix::poll::PollFd::new(
        client.as_fd(),
        nix::poll::PollFlags::POLLPRI,
    )];
    assert_eq!(
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap(),
        1
    );
    let mut got = Vec::new();
    let mut mark_at = None;
    let mut buf = [0u8; 16];
    while got.len() < 5 {
        if sys::tty::at_urgent_mark(client.as_fd()).unwrap() {
            mark_at.get_or_insert(got.len());
        }
        let n = (&client).read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"ab#cd");
    assert_eq!(mark_at, Some(2));
    drop(client);
    let (outcome, _, _) = join(relay);
    assert_eq!(outcome.unwrap().end, End::ClientClosed);
    program.wait();
}

#[test]
fn packet_mode_reports_raw_cooked_and_flushes() {
    let mut program = Program::start(
        "read go; stty raw; sleep 0.3; stty -raw; sleep 0.3; \
         perl -MPOSIX -e 'POSIX::tcflush(0, POSIX::TCIOFLUSH())'; sleep 0.3; echo data",
    );
    let (mut client, server) = tcp_pair();
    let cfg = RelayConfig {
        packet_mode: true,
        ..config()
    };
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        cfg,
    );
    // Through the relay, hence after packet mode is on.
    client.write_all(b"go\n").unwrap();
    let mut got = Vec::new();
    read_to_end(&mut client, &mut got);
    // Data bytes come without their packet header.
    assert_eq!(got, b"go\r\ndata\r\n");
    let (outcome, filter, _) = join(relay);
    outcome.unwrap();
    let position = |bit: u8| filter.controls.iter().position(|c| c & bit != 0);
    let nostop = position(PacketControl::NOSTOP).expect("NOSTOP");
    let dostop = position(PacketControl::DOSTOP).expect("DOSTOP");
    assert!(nostop < dostop, "{:?}", filter.controls);
    assert!(
        position(PacketControl::FLUSHREAD).is_some(),
        "{:?}",
        filter.controls
    );
    assert!(
        position(PacketControl::FLUSHWRITE).is_some(),
        "{:?}",
        filter.controls
    );
    assert!(program.wait().success());
}

#[test]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn packet_mode_reports_termios_changes_under_external_processing() {
    let mut program = Program::start("read go; stty -echo; sleep 0.3; echo done");
    let (mut client, server) = tcp_pair();
    let cfg = RelayConfig {
        packet_mode: true,
        ..config()
    };
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        cfg,
    );
    client.write_all(&[1, b'x']).unwrap();
    thread::sleep(Duration::from_millis(200));
    client.write_all(b"go\n").unwrap();
    let mut got = Vec::new();
    read_to_end(&mut client, &mut got);
    assert!(got.ends_with(b"done\r\n"), "{got:?}");
    let (outcome, filter, _) = join(relay);
    outcome.unwrap();
    assert!(
        filter
            .controls
            .iter()
            .any(|c| c & PacketControl::IOCTL != 0),
        "{:?}",
        filter.controls
    );
    // The filter read the modes the program set.
    assert_eq!(
        filter.echo_seen.last(),
        Some(&false),
        "{:?}",
        filter.echo_seen
    );
    assert!(program.wait().success());
}

#[test]
fn terminal_modes_show_what_the_program_set() {
    let (master, slave, _) = open(24, 80).unwrap();
    let modes = TerminalModes::of(master.as_fd()).unwrap();
    assert!(modes.canonical() && modes.echo() && modes.signals());
    assert_eq!(modes.control_char(SpecialCharacterIndices::VINTR), Some(3));
    assert!(!modes.external_processing());
    let mut raw = nix::sys::termios::tcgetattr(&slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut raw);
    raw.control_chars[SpecialCharacterIndices::VSTOP as usize] = libc::_POSIX_VDISABLE;
    nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let modes = TerminalModes::of(master.as_fd()).unwrap();
    assert!(!modes.canonical() && !modes.echo() && !modes.flow_control());
    assert_eq!(modes.control_char(SpecialCharacterIndices::VSTOP), None);
}

#[test]
fn the_program_exiting_ends_the_relay_after_its_last_output() {
    // The test holds the slave open, as a background job would: no hang-up
    // comes, only the pid watch can end the relay.
    let mut program = Program::start_holding_slave(
        "i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done; echo LAST",
    );
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        config(),
    );
    assert!(program.wait().success());
    // The program is gone before the client reads a byte.
    let mut got = Vec::new();
    read_to_end(&mut client, &mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("line 0\r\n") && text.ends_with("line 299\r\nLAST\r\n"),
        "{text}"
    );
    let (outcome, _, _) = join(relay);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.end, End::ChildExited);
    assert_eq!(outcome.unsent, 0);
    assert_eq!(outcome.to_network, got.len() as u64);
}

#[test]
fn the_client_closing_ends_the_relay_and_the_hangup_leaves_no_process() {
    let mut program = Program::start("sleep 30 & echo \"bg=$!\"; exec sleep 30");
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        config(),
    );
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"\r\n");
    let text = String::from_utf8_lossy(&got);
    let background: i32 = text.trim().trim_start_matches("bg=").parse().unwrap();
    drop(client);
    let (outcome, _, master) = join(relay);
    assert_eq!(outcome.unwrap().end, End::ClientClosed);
    // The caller hangs the terminal up: SIGHUP to the whole session.
    drop(master);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(program.wait().signal(), Some(libc::SIGHUP));
    wait_gone(background);
}

#[test]
fn an_idle_session_ends() {
    let mut program = Program::start("exec sleep 30");
    let (_client, server) = tcp_pair();
    let cfg = RelayConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..config()
    };
    let started = Instant::now();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Passthrough,
        cfg,
    );
    let (outcome, _, master) = join(relay);
    assert_eq!(outcome.unwrap().end, End::Idle);
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(master);
    program.wait();
}

#[test]
fn a_filter_ends_the_session_after_its_reply() {
    let mut program = Program::start("exec sleep 30");
    let (mut client, server) = tcp_pair();
    let relay = start_relay(
        server,
        program.take_master(),
        program.watch(),
        Recorder::default(),
        config(),
    );
    client.write_all(&[1, b'e']).unwrap();
    let mut got = Vec::new();
    read_to_end(&mut client, &mut got);
    assert_eq!(got, b"bye\r\n");
    let (outcome, _, master) = join(relay);
    assert_eq!(outcome.unwrap().end, End::Filter);
    drop(master);
    program.wait();
}

/// Takes nothing, ever.
struct Stuck;

impl Filter for Stuck {
    fn on_network(&mut self, _: &[u8], _: UrgentMark, _: &mut Outputs) -> usize {
        0
    }
}

#[test]
fn a_filter_that_takes_nothing_is_an_error_not_a_hang() {
    let mut program = Program::start("exec sleep 30");
    let (mut client, server) = UnixStream::pair().unwrap();
    let cfg = RelayConfig {
        buffer_size: 4096,
        ..config()
    };
    let relay = start_relay(server, program.take_master(), program.watch(), Stuck, cfg);
    client.write_all(&[b'x'; 8192]).unwrap();
    let (outcome, _, master) = join(relay);
    assert!(outcome.is_err());
    drop(master);
    program.wait();
}
