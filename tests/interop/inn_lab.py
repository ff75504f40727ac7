"""A private INN 2.7 (Debian's inn2) in a throwaway directory: the reference
news server that the nntpd tests run their scenarios against too, and the
peer that feeds and is fed by nntpd. Used by the tests and by
scripts/bench-nntpd.sh.

Every path of the instance is under its directory (INNCONF names its
inn.conf), it listens on 127.0.0.1 on a port of our choosing, runs as the
news user when started as root, and stores articles in tradspool with
tradindexed overview, INN's defaults.
"""

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

INN_BIN = Path("/usr/lib/news/bin")
INND = INN_BIN / "innd"


def installed():
    return INND.exists()


def _wait_port(port, timeout=20.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"innd exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(5)
                if s.recv(100).startswith(b"20"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"innd does not answer on {port}")


class Inn:
    """An INN instance: `groups` is a list of (name, flag) (flag y, n or m),
    `peers` a list of (name, host, port, pattern) INN feeds with innfeed
    (streaming), `feeders` host names allowed to feed it."""

    def __init__(self, base, port, pathhost="inn.test", groups=(("lab.test", "y"),),
                 peers=(), feeders=("127.0.0.1", "localhost"), moderators=None):
        self.dir = Path(base)
        self.port = port
        self.pathhost = pathhost
        for sub in ("etc", "db", "spool/articles", "spool/overview", "spool/incoming/tmp",
                    "spool/outgoing", "spool/innfeed", "spool/archive", "log", "run", "http",
                    "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.etc = self.dir / "etc"
        self.db = self.dir / "db"
        self._inn_conf()
        (self.etc / "storage.conf").write_text(
            "method tradspool {\n    newsgroups: *\n    class: 0\n}\n")
        (self.etc / "readers.conf").write_text(
            'auth "all" {\n    hosts: "*"\n    default: "<all>"\n}\n'
            'access "all" {\n    users: "<all>"\n    newsgroups: "*"\n    access: RPAN\n'
            '    addcanlockuser: none\n}\n')
        peers_conf = "streaming: true\nmax-connections: 8\n"
        peers_conf += f'peer ME {{\n  hostname: "localhost, 127.0.0.1, ::1"\n}}\n'
        for name, host, _port, _pat in peers:
            if host not in ("localhost", "127.0.0.1"):
                peers_conf += f'peer {name} {{\n  hostname: "{host}"\n}}\n'
        (self.etc / "incoming.conf").write_text(peers_conf)
        feeds = "ME:*::\n"
        feeds += f"innfeed!:!*:Tc,Wnm*:{INN_BIN / 'innfeed'}\n"
        innfeed = (f"peer-timeout: 30\nbacklog-directory: {self.dir}/spool/innfeed\n"
                   "initial-reconnect-time: 1\nmax-reconnect-time: 5\n"
                   "stats-period: 60\nstats-reset: 43200\n"
                   "backlog-newfile-period: 5\nbacklog-rotate-period: 5\n"
                   "backlog-ckpt-period: 5\nbacklog-factor: 1.10\n"
                   "no-check-high: 95.0\nno-check-low: 90.0\n")
        for name, host, port_, pattern in peers:
            feeds += f"{name}/{name}:{pattern}:Tm:innfeed!\n"
            innfeed += (f"peer {name} {{\n  ip-name: {host}\n  port-number: {port_}\n"
                        f"  max-connections: 2\n  streaming: true\n"
                        f"  initial-connections: 1\n}}\n")
        (self.etc / "newsfeeds").write_text(feeds)
        (self.etc / "innfeed.conf").write_text(innfeed)
        (self.etc / "expire.ctl").write_text("/remember/:11\n*:A:1:90:never\n")
        (self.etc / "moderators").write_text(moderators or "")
        for f in ("control.ctl", "control.ctl.local", "distrib.pats", "distributions",
                  "subscriptions", "localgroups", "nocem.ctl", "innwatch.ctl",
                  "inn-secrets.conf", "passwd.nntp", "nnrpd.track", "nntpsend.ctl",
                  "send-uucp.cf", "actsync.cfg", "actsync.ign", "innreport.conf",
                  "news2mail.cf", "cycbuff.conf", "buffindexed.conf", "ovdb.conf",
                  "ovsqlite.conf"):
            src = Path("/etc/news") / f
            if src.exists():
                shutil.copy(src, self.etc / f)
        shutil.copytree("/etc/news/filter", self.etc / "filter", dirs_exist_ok=True)
        active = "".join(f"{g} 0000000000 0000000001 {flag}\n" for g, flag in groups)
        active += "control 0000000000 0000000001 n\ncontrol.cancel 0000000000 0000000001 n\n"
        active += "junk 0000000000 0000000001 n\n"
        (self.db / "active").write_text(active)
        now = int(time.time())
        (self.db / "active.times").write_text(
            "".join(f"{g} {now} inn_lab\n" for g, _ in groups))
        (self.db / "newsgroups").write_text("".join(f"{g}\tA group.\n" for g, _ in groups))
        (self.db / "history").write_text("")
        self.env = dict(os.environ, INNCONF=str(self.etc / "inn.conf"), HOME=str(self.dir))
        self._chown()
        self._as_news([str(INN_BIN / "makedbz"), "-i", "-o"], cwd=self.db)
        self.proc = None

    def _inn_conf(self):
        d = self.dir
        lines = {
            "pathhost": self.pathhost, "domain": "localdomain", "port": str(self.port),
            "bindaddress": "127.0.0.1", "bindaddress6": '""',
            "pathnews": "/usr/lib/news", "pathbin": "/usr/lib/news/bin",
            "pathcontrol": "/usr/lib/news/bin/control", "pathfilter": f"{d}/etc/filter",
            "pathetc": f"{d}/etc", "pathdb": f"{d}/db", "pathspool": f"{d}/spool",
            "patharticles": f"{d}/spool/articles", "pathoverview": f"{d}/spool/overview",
            "pathincoming": f"{d}/spool/incoming", "pathtmp": f"{d}/tmp",
            "pathoutgoing": f"{d}/spool/outgoing", "patharchive": f"{d}/spool/archive",
            "pathlog": f"{d}/log", "pathrun": f"{d}/run", "pathhttp": f"{d}/http",
            "ovmethod": "tradindexed", "hismethod": "hisv6", "enableoverview": "true",
            "storeonxref": "true", "wireformat": "true", "mta": '"/usr/sbin/sendmail -oi -oem %s"',
            "mailcmd": "/usr/lib/news/bin/innmail", "maxartsize": "1000000",
            "localmaxartsize": "1000000", "artcutoff": "0", "remembertrash": "true",
            "allownewnews": "true", "nnrpdpostport": str(self.port), "doinnwatch": "false",
            "pgpverify": "false", "logipaddr": "true", "status": "0", "timer": "0",
            "addinjectiondate": "true", "addinjectionpostinghost": "true",
            "docancels": "all", "htmlstatus": "false", "maxconnections": "50",
            "hiscachesize": "256", "msgidcachesize": "64000", "nnrpdloadlimit": "0",
            "initialtimeout": "10", "clienttimeout": "1800", "backoffauth": "false",
        }
        (self.etc / "inn.conf").write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))

    def _chown(self):
        if os.geteuid() != 0:
            return
        news = pwd.getpwnam("news")
        for dirpath, _dirs, files in os.walk(self.dir):
            os.chown(dirpath, news.pw_uid, news.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), news.pw_uid, news.pw_gid,
                         follow_symlinks=False)
        # The news user must reach its tree.
        for parent in self.dir.parents:
            st = parent.stat()
            if st.st_uid == 0 and not st.st_mode & 0o001:
                os.chmod(parent, (st.st_mode & 0o7777) | 0o011)
            if str(parent) in ("/tmp", "/"):
                break

    def _as_news(self, argv, cwd=None, check=True, **kw):
        pre = []
        if os.geteuid() == 0:
            pre = ["setpriv", "--reuid=news", "--regid=news", "--init-groups"]
        return subprocess.run(pre + argv, cwd=cwd, env=self.env, check=check,
                              capture_output=True, text=True, **kw)

    def start(self):
        self.log = open(self.dir / "innd.out", "w")
        # innd starts as root (it binds through innbind, then becomes news)
        # or as news; -f keeps it in the foreground.
        self.proc = subprocess.Popen([str(INND), "-f"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        _wait_port(self.port, proc=self.proc)
        return self

    def ctlinnd(self, *args):
        return self._as_news([str(INN_BIN / "ctlinnd"), "-t", "10", *args], check=False)

    def flush_feeds(self):
        self.ctlinnd("flush", "innfeed!")

    def run(self, *argv, check=True):
        """An INN tool with this instance's configuration, as news."""
        return self._as_news([str(INN_BIN / argv[0]), *argv[1:]], check=check)

    def logs(self):
        out = ""
        for f in ("innd.out", "log/news.notice", "log/news.err", "log/innfeed.log",
                  "log/news"):
            p = self.dir / f
            if p.exists():
                out += f"== {f}\n" + p.read_text(errors="replace")[-4000:]
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.ctlinnd("throttle", "stop")
            self.ctlinnd("shutdown", "stop")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pidfile in (self.dir / "run").glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text().split()[0]), 9)
            except (OSError, ValueError):
                pass
