"""harness.py - what every hearth integration test stands on.

A test starts a real mosquitto on a free loopback port (Broker), the daemon
(Hub), sometimes a simulated home (Sim), and talks to them as the phone or a
device would, through an MQTT v5 client that records every message (Client).
hearthctl runs through run_ctl().

Rules this module keeps so that a failing test never leaves anything behind
and always says why:
- every wait is bounded, and a timeout names what was seen instead;
- every process is started from the main thread with PR_SET_PDEATHSIG, is
  registered, and is stopped by its own PID (SIGTERM, then SIGKILL after a
  grace period) by the test's cleanups and again at exit;
- logs go to files in one temporary folder per test program; when a test
  fails, the tail of every log of that test is printed and the folder is kept
  (its path is printed), else it is removed at exit (HEARTH_KEEP_TMP=1 keeps it).

Programs come from $HEARTHD, $HEARTHCTL and $HEARTH_SIM (set by ctest), else
from $HEARTH_SOURCE_DIR/build/bin. Nothing depends on the current directory.
Needs only the standard library and paho-mqtt (1.6 API; 2.x also works).
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HEARTH_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
LOCALHOST = "127.0.0.1"
LOG_TAIL_LINES = 150

# ==== Programs =============================================================


def program(env, name):
    """Path of a built program: $ENV, else build/bin/NAME of the source tree.

    A test run by hand before anything is built is skipped, not failed; under
    ctest the variable is always set and a missing file is an error."""
    path = os.environ.get(env)
    if path:
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"${env}={path} is not an executable file: build it first")
        return path
    path = os.path.join(SOURCE_DIR, "build", "bin", name)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest(f"{path} is not built (or set ${env})")
    return path


def mosquitto_path():
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    raise RuntimeError("mosquitto is not installed: run scripts/deps.sh")


def now_ms():
    return int(time.time() * 1000)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def port_open(port, host=LOCALHOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ==== Temporary folders and the process registry ===========================

_root = None
_failed = False
_procs = []  # every _Proc ever started, in order
_clients = []

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None
_PR_SET_PDEATHSIG = 1


def workdir(prefix):
    """A fresh folder under this program's temporary root."""
    global _root
    if _root is None:
        _root = tempfile.mkdtemp(prefix="hearth-it-")
    return tempfile.mkdtemp(prefix=prefix + "-", dir=_root)


def _child_setup():
    # Runs in the child between fork and exec: if the test program dies
    # (even by SIGKILL from a ctest timeout), the child is killed too.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Proc:
    """One child process, its log file, and how to stop it."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        with open(log_path, "ab") as log:
            log.write(f"==== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env,
                                          preexec_fn=_child_setup, close_fds=True)
        self.pid = self.popen.pid
        _procs.append(self)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        """Send SIG to this PID, wait up to GRACE s, then SIGKILL; the exit code."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(sig)
                return self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"harness: {self.name} (pid {self.pid}) ignored signal {sig} "
                                 f"for {grace} s: killing it\n")
        return self.kill9()

    def kill9(self):
        if self.popen.poll() is None:
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
        return self.popen.wait(timeout=10)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def tail(text, lines=LOG_TAIL_LINES):
    parts = text.splitlines()
    if len(parts) <= lines:
        return text
    return f"[... {len(parts) - lines} lines cut ...]\n" + "\n".join(parts[-lines:])


def _stop_everything():
    for c in list(_clients):
        c.close()
    for p in reversed(_procs):
        try:
            p.stop(grace=3)
        except Exception as e:  # keep stopping the others
            sys.stderr.write(f"harness: could not stop {p.name} (pid {p.pid}): {e}\n")


def _at_exit():
    _stop_everything()
    if _root is None:
        return
    if _failed or os.environ.get("HEARTH_KEEP_TMP"):
        sys.stderr.write(f"harness: logs and data kept in {_root}\n")
    else:
        shutil.rmtree(_root, ignore_errors=True)


atexit.register(_at_exit)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # unwinds finally blocks, then atexit


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_term)


def _wait_until(cond, timeout, what, check=None, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if check:
            check()
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# ==== Broker ===============================================================


class Broker:
    """A private mosquitto on 127.0.0.1:port.

    persistence=True keeps sessions and retained messages in the broker's
    folder across restart() (for session tests). restart() keeps the port."""

    def __init__(self, persistence=False, extra_conf=()):
        self.dir = workdir("broker")
        self.persistence = persistence
        self.extra_conf = list(extra_conf)
        self.port = None
        self.proc = None
        self.conf_path = os.path.join(self.dir, "mosquitto.conf")
        self.log_path = os.path.join(self.dir, "mosquitto.log")

    @property
    def address(self):
        return f"{LOCALHOST}:{self.port}"

    def _write_conf(self, port):
        lines = [f"listener {port} {LOCALHOST}", "allow_anonymous true",
                 "set_tcp_nodelay true", "log_dest stderr", "log_type error",
                 "log_type warning", "log_type notice", "log_type information",
                 "log_timestamp_format %H:%M:%S", "connection_messages true"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "persistence_file mosquitto.db"]
        else:
            lines += ["persistence false"]
        if os.geteuid() == 0:
            lines += ["user root"]  # else mosquitto drops to a user that cannot write here
        lines += self.extra_conf
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _ready(self, offset):
        # "mosquitto version X running" is logged once the listener is bound:
        # a port that accepts before that may be somebody else's broker.
        return " running" in read_text(self.log_path)[offset:] and port_open(self.port)

    def start(self, timeout=10):
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            port = self.port if fixed else free_port()
            self._write_conf(port)
            offset = len(read_text(self.log_path))
            self.port = port
            self.proc = _Proc("mosquitto", [mosquitto_path(), "-c", self.conf_path], self.log_path)
            deadline = time.monotonic() + timeout
            while self.proc.alive() and time.monotonic() < deadline:
                if self._ready(offset):
                    return self
                time.sleep(0.05)
            self.proc.stop()
            if not fixed:
                self.port = None
        raise RuntimeError(f"mosquitto did not start on port {port}:\n{tail(read_text(self.log_path))}")

    def stop(self):
        """SIGTERM to this broker's PID; SIGKILL after 5 s. Returns the exit code."""
        if self.proc is None:
            return None
        return self.proc.stop(grace=5)

    def kill9(self):
        return self.proc.kill9() if self.proc else None

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        return read_text(self.log_path)

    def __enter__(self):
        return self if self.proc and self.proc.alive() else self.start()

    def __exit__(self, *exc):
        self.stop()


# ==== Hub (hearthd) ========================================================


class Hub:
    """hearthd --broker 127.0.0.1:PORT --data DIR [--home ID] [--config FILE] [ARGS].

    start() may be called again after stop()/kill9(): same data dir, same
    log file (appended), so a test can restart the hub on its own state."""

    def __init__(self, broker, home=None, data_dir=None, config=None, args=(), env=None):
        self.broker = broker
        self.home = home or "home"
        self._home_flag = home
        self.dir = workdir("hub")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.config = config
        self.args = list(args)
        self.env = env
        self.log_path = os.path.join(self.dir, "hearthd.log")
        self.proc = None
        self.started = None  # time.monotonic() of the last start()
        self.started_ms = None

    @property
    def prefix(self):
        return f"hearth/{self.home}"

    def argv(self):
        argv = [program("HEARTHD", "hearthd"), "--broker", self.broker.address,
                "--data", self.data_dir]
        if self._home_flag:
            argv += ["--home", self._home_flag]
        if self.config:
            argv += ["--config", self.config]
        return argv + self.args

    def start(self):
        if self.proc is not None and self.proc.alive():
            raise RuntimeError("hearthd is already running")
        argv = self.argv()
        env = dict(os.environ, **self.env) if self.env else None
        self.started = time.monotonic()
        self.started_ms = now_ms()
        self.proc = _Proc("hearthd", argv, self.log_path, env=env)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def check_alive(self):
        """Raise AssertionError (with the log) if hearthd has exited."""
        if self.proc is not None and not self.proc.alive():
            raise AssertionError(f"hearthd exited with {self.proc.returncode}:\n{tail(self.log())}")

    def wait_online(self, client, timeout=15):
        """Wait for the retained <p>/status "online" published since start()."""
        topic = f"{self.prefix}/status"
        if not client.subscribed(topic):
            client.subscribe(topic)
        started = self.started
        return client.wait_for(
            lambda m: m.topic == topic and m.json["state"] == "online" and m.received >= started,
            timeout=timeout, check=self.check_alive, what=f"{topic} online")

    def stop(self, grace=10):
        """SIGTERM to hearthd's PID and wait (SIGKILL after GRACE s). The exit code."""
        return self.proc.stop(grace=grace) if self.proc else None

    def kill9(self):
        return self.proc.kill9() if self.proc else None

    def log(self):
        return read_text(self.log_path)

    def sanitizer_reports(self):
        """Lines of AddressSanitizer / LeakSanitizer / UBSan reports in the log."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "SUMMARY: UndefinedBehaviorSanitizer")
        return [l for l in self.log().splitlines() if any(m in l for m in marks)]

    def __enter__(self):
        return self if self.alive() else self.start()

    def __exit__(self, *exc):
        self.stop()


# ==== Sim (hearth-sim) =====================================================


class Sim:
    """hearth-sim --home-file F --broker 127.0.0.1:PORT --log LOG --quiet [--home ID].

    home_file is a path, or a name in tests/sim/homes ("demo" or "demo.json")."""

    def __init__(self, broker, home_file, home=None, seed=None, args=()):
        self.broker = broker
        self.home_file = self._resolve(home_file)
        self.home = home
        self.seed = seed
        self.args = list(args)
        self.dir = workdir("sim")
        self.log_path = os.path.join(self.dir, "sim.jsonl")
        self.out_path = os.path.join(self.dir, "sim.out")
        self.proc = None

    @staticmethod
    def _resolve(name):
        if os.path.isabs(name) and os.path.exists(name):
            return name
        homes = os.path.join(SOURCE_DIR, "tests", "sim", "homes")
        for cand in (name, name + ".json"):
            path = os.path.join(homes, cand)
            if os.path.exists(path):
                return path
        if os.path.exists(name):
            return os.path.abspath(name)
        raise FileNotFoundError(f"no home file {name!r} (nor in {homes})")

    def start(self):
        argv = [program("HEARTH_SIM", "hearth-sim"), "--home-file", self.home_file,
                "--broker", self.broker.address, "--log", self.log_path, "--quiet"]
        if self.home:
            argv += ["--home", self.home]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        self.proc = _Proc("hearth-sim", argv + self.args, self.out_path)
        return self

    def check_alive(self):
        if self.proc is not None and not self.proc.alive():
            raise AssertionError(f"hearth-sim exited with {self.proc.returncode}:\n{self.log()}")

    def events(self, name=None):
        """The JSON lines of the sim's log (all, or those with event == NAME)."""
        out = []
        for line in read_text(self.log_path).splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line being written
            if isinstance(ev, dict) and (name is None or ev.get("event") == name):
                out.append(ev)
        return out

    def commands(self):
        return self.events("command")

    def wait_ready(self, timeout=10):
        _wait_until(lambda: self.events("ready"), timeout, "hearth-sim ready", check=self.check_alive)
        return self

    def wait_event(self, predicate, timeout=10, what="a sim event"):
        """The first log event for which predicate(ev) is true (bounded wait)."""
        found = []

        def cond():
            for ev in self.events():
                try:
                    if predicate(ev):
                        found.append(ev)
                        return True
                except (KeyError, TypeError, IndexError, AttributeError):
                    pass
            return False

        _wait_until(cond, timeout, what, check=self.check_alive)
        return found[0]

    def stop(self):
        return self.proc.stop() if self.proc else None

    def log(self):
        return read_text(self.out_path) + read_text(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ==== Client (MQTT v5) =====================================================


class Message:
    """One received message. json is the decoded payload, or None."""

    __slots__ = ("topic", "payload", "json", "retain", "qos", "properties", "received")

    def __init__(self, msg):
        self.topic = msg.topic
        self.payload = bytes(msg.payload)
        try:
            self.json = json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            self.json = None
        self.retain = bool(msg.retain)
        self.qos = msg.qos
        self.properties = getattr(msg, "properties", None)
        self.received = time.monotonic()

    @property
    def text(self):
        return self.payload.decode("utf-8", "replace")

    @property
    def correlation(self):
        return getattr(self.properties, "CorrelationData", None) if self.properties else None

    def __repr__(self):
        body = self.text if len(self.payload) <= 300 else self.text[:300] + "..."
        return f"<{self.topic}{' (retained)' if self.retain else ''}: {body}>"


def _code(rc):
    return getattr(rc, "value", rc)


class Client:
    """An MQTT v5 client that records every message it receives.

    Its network loop runs in paho's thread; the recorded list is guarded by a
    condition variable, so wait_for() wakes as soon as a message arrives."""

    def __init__(self, broker_or_port, client_id=None, timeout=10):
        self.port = getattr(broker_or_port, "port", broker_or_port)
        self.client_id = client_id or f"it-{os.getpid()}-{len(_clients)}-{int(time.time() * 1000) % 100000}"
        self._cv = threading.Condition()
        self._msgs = []
        self._subacks = {}
        self._subs = set()
        self._connack = None
        self._closed = False
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho 2.x
            self._c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=self.client_id,
                                  protocol=mqtt.MQTTv5)
        else:
            self._c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self._c.on_connect = self._on_connect
        self._c.on_message = self._on_message
        self._c.on_subscribe = self._on_subscribe
        self._c.on_socket_open = self._on_socket_open
        _clients.append(self)
        self._c.connect(LOCALHOST, self.port, keepalive=30)
        self._c.loop_start()
        with self._cv:
            if not self._cv.wait_for(lambda: self._connack is not None, timeout):
                self.close()
                raise AssertionError(f"no CONNACK from 127.0.0.1:{self.port} in {timeout} s")
        if _code(self._connack) != 0:
            self.close()
            raise AssertionError(f"broker refused the connection: {self._connack}")

    # -- paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self._cv:
            self._connack = rc
            self._cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, codes, properties=None):
        with self._cv:
            self._subacks[mid] = codes
            self._cv.notify_all()

    def _on_message(self, client, userdata, msg):
        m = Message(msg)
        with self._cv:
            self._msgs.append(m)
            self._cv.notify_all()

    @staticmethod
    def _on_socket_open(client, userdata, sock):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    # -- API
    def subscribe(self, topic, qos=1, timeout=10):
        """Subscribe and wait for the SUBACK; fails if the broker refused."""
        rc, mid = self._c.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError(f"subscribe {topic}: {mqtt.error_string(rc)}")
        with self._cv:
            if not self._cv.wait_for(lambda: mid in self._subacks, timeout):
                raise AssertionError(f"no SUBACK for {topic} in {timeout} s")
            codes = self._subacks.pop(mid)
        bad = [c for c in codes if _code(c) >= 0x80]
        if bad:
            raise AssertionError(f"subscribe {topic} refused: {bad}")
        self._subs.add(topic)
        return self

    def subscribed(self, topic):
        return topic in self._subs

    def publish(self, topic, payload=None, qos=1, retain=False, response_topic=None,
                correlation=None, timeout=10):
        """Publish bytes, str, or any JSON-able object; QoS>0 waits for the ack."""
        if payload is None or isinstance(payload, (bytes, bytearray)):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
        else:
            data = json.dumps(payload).encode("utf-8")
        props = None
        if response_topic is not None or correlation is not None:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = (correlation.encode("utf-8") if isinstance(correlation, str)
                                         else bytes(correlation))
        info = self._c.publish(topic, data, qos=qos, retain=retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError(f"publish {topic}: {mqtt.error_string(info.rc)}")
        if qos > 0:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise AssertionError(f"publish {topic}: no ack in {timeout} s")
        return info

    def mark(self):
        """Index of the next message: pass it as since= to ignore older ones."""
        with self._cv:
            return len(self._msgs)

    def messages(self, topic_filter="#", since=0):
        with self._cv:
            msgs = self._msgs[since:]
        return [m for m in msgs if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def clear(self):
        with self._cv:
            self._msgs.clear()

    def wait_for(self, predicate=None, timeout=10, topic=None, since=0, check=None, what=None):
        """The first message (from index SINCE) on TOPIC (a filter) for which
        predicate(msg) is true; a predicate that raises KeyError/TypeError/...
        on a message counts as false. CHECK() is called while waiting (to fail
        fast when a process died). Raises AssertionError with what was seen."""
        deadline = time.monotonic() + timeout
        i = since

        def match(m):
            if topic is not None and not mqtt.topic_matches_sub(topic, m.topic):
                return False
            if predicate is None:
                return True
            try:
                return bool(predicate(m))
            except (KeyError, TypeError, IndexError, AttributeError, ValueError):
                return False

        while True:
            with self._cv:
                while i < len(self._msgs):
                    m = self._msgs[i]
                    i += 1
                    if match(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.2))
            if check:
                check()
        raise AssertionError(f"timed out after {timeout} s waiting for "
                             f"{what or topic or 'a message'}; {self.seen(since)}")

    def seen(self, since=0):
        """A short description of the messages received (for failure messages)."""
        msgs = self.messages("#", since)
        if not msgs:
            return "no message received"
        counts = {}
        for m in msgs:
            counts[m.topic] = counts.get(m.topic, 0) + 1
        last = "; ".join(repr(m) for m in msgs[-5:])
        return (f"{len(msgs)} received, on: " +
                ", ".join(f"{t} x{n}" for t, n in sorted(counts.items())) + f"; last: {last}")

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._c.disconnect()
        except Exception:
            pass
        self._c.loop_stop()
        if self in _clients:
            _clients.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ==== hearthctl ============================================================


def run_ctl(data_dir, *args, timeout=20, input=None, env=None):
    """hearthctl --data DATA_DIR ARGS -> CompletedProcess (text stdout/stderr)."""
    argv = [program("HEARTHCTL", "hearthctl"), "--data", str(data_dir)] + [str(a) for a in args]
    return subprocess.run(argv, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **env) if env else None)


# ==== TestCase =============================================================


class TestCase(unittest.TestCase):
    """unittest.TestCase whose helpers stop what they start (by PID, in the
    test's cleanups) and print every log of a failed test."""

    def broker(self, **kw):
        b = Broker(**kw).start()
        self.addCleanup(b.stop)
        return b

    def hub(self, broker, start=True, **kw):
        h = Hub(broker, **kw)
        self.addCleanup(self._no_sanitizer_report, h)
        self.addCleanup(h.stop)
        return h.start() if start else h

    def sim(self, broker, home_file, ready=True, **kw):
        s = Sim(broker, home_file, **kw)
        self.addCleanup(s.stop)
        s.start()
        return s.wait_ready() if ready else s

    def client(self, broker, **kw):
        c = Client(broker, **kw)
        self.addCleanup(c.close)
        return c

    def _no_sanitizer_report(self, hub):
        reports = hub.sanitizer_reports()
        if reports:
            self.fail("sanitizer report in hearthd's log:\n" + "\n".join(reports[:20]))

    def run(self, result=None):
        global _failed
        if result is None:
            result = self.defaultTestResult()
        first = len(_procs)
        bad = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > bad:
                _failed = True
                self._dump_logs(_procs[first:])

    def _dump_logs(self, procs):
        seen = set()
        out = [f"\n======== {self.id()} failed: logs ========"]
        for p in procs:
            if p.log_path in seen:
                continue
            seen.add(p.log_path)
            out.append(f"-------- {p.name}: {p.log_path} --------")
            out.append(tail(read_text(p.log_path)))
            if p.name == "hearth-sim":
                sim_log = os.path.join(os.path.dirname(p.log_path), "sim.jsonl")
                out.append(f"-------- hearth-sim events: {sim_log} --------")
                out.append(tail(read_text(sim_log), 60))
        out.append("======== end of logs ========\n")
        sys.stderr.write("\n".join(out) + "\n")
        sys.stderr.flush()


def main():
    """unittest.main with verbose output; exits non-zero when a test fails."""
    unittest.main(verbosity=2)
