//! The command line every daemon shares (CONTRACT.md, "Starting a daemon").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::invocation::{Invocation, Mode};
use super::log::Target;
use super::{master, Service};

/// Where `make install` puts configuration files; `-f` overrides.
pub const SYSCONFDIR: &str = match option_env!("SYSCONFDIR") {
    Some(d) => d,
    None => "/etc",
};

fn usage(service: &Service, opts: &getopts::Options) -> String {
    let mut brief = format!(
        "Usage: {n} [-D | -F] [-d] [-f FILE] [-o KEY=VALUE]... \n       {n} -t [-f FILE] [-o KEY=VALUE]...",
        n = service.name
    );
    for m in service.extra_modes {
        brief.push_str(&format!(
            "\n       {} [-f FILE] [-o KEY=VALUE]... --{} {}",
            service.name, m.long, m.usage
        ));
    }
    brief.push_str("\n\nWithout -D or -F the daemon runs under inetd: the connection is fd 0.");
    opts.usage(&brief)
}

/// The main function of every daemon: parse flags, load the configuration,
/// then run in the requested mode. Never returns.
pub fn run(service: &'static Service) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = getopts::Options::new();
    opts.optflag(
        "D",
        "",
        "standalone: detach and fork a session per connection",
    )
    .optflag("F", "", "standalone in the foreground, logging to stderr")
    .optopt("f", "", "configuration file", "FILE")
    .optmulti(
        "o",
        "",
        "set one configuration key (after the file)",
        "KEY=VALUE",
    )
    .optflag(
        "t",
        "",
        "check the configuration, print the effective settings, exit",
    )
    .optflag(
        "d",
        "",
        "debug log: the protocol dialogue, passwords masked",
    )
    .optflag("h", "help", "this help")
    .optflag("V", "version", "print the version");
    for m in service.extra_modes {
        opts.optflag("", m.long, m.usage);
    }
    let matches = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: {e}\n{}", service.name, usage(service, &opts));
            std::process::exit(2);
        }
    };
    if matches.opt_present("h") {
        print!("{}", usage(service, &opts));
        std::process::exit(0);
    }
    if matches.opt_present("V") {
        println!("{} (classicd) {}", service.name, env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    let extra = service
        .extra_modes
        .iter()
        .find(|m| matches.opt_present(m.long));
    if extra.is_none() && !matches.free.is_empty() {
        eprintln!(
            "{}: unexpected argument '{}'",
            service.name, matches.free[0]
        );
        std::process::exit(2);
    }
    let mode = match (matches.opt_present("D"), matches.opt_present("F")) {
        (true, true) => {
            eprintln!("{}: -D and -F exclude each other", service.name);
            std::process::exit(2);
        }
        (true, false) => Mode::Detached,
        (false, true) => Mode::Foreground,
        (false, false) => Mode::Inetd,
    };
    let file = match matches.opt_str("f") {
        Some(f) => Some(PathBuf::from(f)),
        None => {
            let default = Path::new(SYSCONFDIR).join(format!("{}.conf", service.name));
            default.exists().then_some(default)
        }
    };
    let inv = Invocation {
        mode,
        file,
        overrides: matches.opt_strs("o"),
        debug: matches.opt_present("d"),
    };
    let settings = match inv.load(service) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            std::process::exit(2);
        }
    };
    let tls = match master::load_tls(&settings) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            std::process::exit(1);
        }
    };
    if matches.opt_present("t") {
        print!("{}", settings.render());
        std::process::exit(0);
    }
    if let Some(m) = extra {
        super::log::init(service.name, Target::Stderr, inv.debug);
        std::process::exit((m.run)(&settings, &matches.free));
    }
    let settings = Arc::new(settings);
    match mode {
        Mode::Inetd => master::run_inetd(service, &inv, settings, tls),
        _ => master::run_standalone(service, &inv, settings, tls),
    }
}
