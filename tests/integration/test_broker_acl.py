"""Broker security (issue 7, item 8): the shipped configs/mosquitto/acl on a
real mosquitto with passwords, and TLS.

A broker with allow_anonymous false, a password file made with
mosquitto_passwd -b, and the shipped ACL file as it is. hearthd logs in with
mqtt.username and mqtt.password_file; a remote's intent gets its reply and
the device gets its command; a device cannot publish a command to another
device's /set (or its own), nor speak for another device, nor publish hub
topics: none of it reaches a subscriber; a phone may answer approvals (the
hub receives them) but not send intents. hearthd with a wrong password says
so in its log and keeps retrying, and logs in once the password is right.
Over TLS (a CA, broker and client certificates made with openssl), hearthd
connects with mqtt.tls_ca_file / tls_cert_file / tls_key_file; a hub that
trusts another CA is refused and says so.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
ACL = os.path.join(harness.SOURCE_DIR, "configs", "mosquitto", "acl")
USERS = {"hearth-hub": "hub-pw", "lamp-1": "lamp-pw", "tv-1": "tv-pw", "phone-1": "phone-pw",
         "remote-1": "remote-pw", "monitor": "monitor-pw"}


class Peer:
    """An MQTT v5 client logged in as USER that records what it receives."""

    def __init__(self, port, user, password=None, timeout=10):
        self.msgs = []
        self.cv = threading.Condition()
        self.connack = None
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho 2.x
            self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1,
                                 client_id=f"{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
        else:
            self.c = mqtt.Client(client_id=f"{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password if password is not None else USERS[user])
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect(harness.LOCALHOST, port, keepalive=30)
        self.c.loop_start()
        with self.cv:
            self.cv.wait_for(lambda: self.connack is not None, timeout)
        if self.connack is None or getattr(self.connack, "value", self.connack) != 0:
            self.close()
            raise AssertionError(f"{user}: broker refused: {self.connack}")

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cv:
            self.connack = rc
            self.cv.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.cv:
            self.msgs.append((msg.topic, bytes(msg.payload)))
            self.cv.notify_all()

    def subscribe(self, topic):
        done = threading.Event()
        self.c.on_subscribe = lambda *a, **k: done.set()
        self.c.subscribe(topic, 1)
        if not done.wait(10):
            raise AssertionError(f"no SUBACK for {topic}")

    def publish(self, topic, payload, retain=False):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.c.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(10)

    def seen(self, topic_filter):
        with self.cv:
            return [(t, p) for t, p in self.msgs if mqtt.topic_matches_sub(topic_filter, t)]

    def wait(self, topic_filter, pred=lambda p: True, timeout=10):
        def found():
            return [p for t, p in self.seen(topic_filter) if pred(p)]

        with self.cv:
            self.cv.wait_for(found, timeout)
        got = found()
        if not got:
            raise AssertionError(f"nothing on {topic_filter}; seen: {self.msgs[-10:]}")
        return got[0]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def run(*argv, cwd=None):
    r = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise AssertionError(f"{argv}: {r.stdout}{r.stderr}")


class BrokerAclTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = harness.workdir("acl")
        self.passwd = os.path.join(self.dir, "passwd")
        for user, pw in USERS.items():
            run("mosquitto_passwd", *(["-c"] if user == "hearth-hub" else []), "-b", self.passwd,
                user, pw)
        os.chmod(self.passwd, 0o600)
        self.extra = ["allow_anonymous false", f"password_file {self.passwd}",
                      f"acl_file {ACL}"]

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def config(self, name, **mqtt_keys):
        return self.write(name, json.dumps({"mqtt": mqtt_keys}))

    def peer(self, port, user, password=None):
        p = Peer(port, user, password)
        self.addCleanup(p.close)
        return p

    def test_acl_end_to_end(self):
        broker = self.broker(extra_conf=self.extra)
        pw = self.write("hub.pw", "hub-pw\n")
        hub = self.hub(broker, config=self.config("hub.json", username="hearth-hub",
                                                  password_file=pw))
        mon = self.peer(broker.port, "monitor")
        mon.subscribe("hearth/#")
        mon.wait(f"{P}/status", lambda p: json.loads(p)["state"] == "online", timeout=15)

        lamp = self.peer(broker.port, "lamp-1")
        tv = self.peer(broker.port, "tv-1")
        lamp.subscribe(f"{P}/device/lamp-1/set")
        tv.subscribe(f"{P}/device/tv-1/set")
        lamp.publish(f"{P}/device/lamp-1/meta",
                     {"room": "living", "kind": "light",
                      "capabilities": ["light.on_off", "light.brightness"]}, retain=True)
        lamp.publish(f"{P}/device/lamp-1/state", {"on": False, "brightness": 0})
        tv.publish(f"{P}/device/tv-1/meta",
                   {"room": "living", "kind": "media", "capabilities": ["media.power"]},
                   retain=True)
        tv.publish(f"{P}/device/tv-1/state", {"on": False})
        mon.wait(f"{P}/device/tv-1/state")

        # An allowed client's intent: its reply, and the lamp's command.
        remote = self.peer(broker.port, "remote-1")
        remote.subscribe(f"{P}/intent/+/result")
        remote.publish(f"{P}/intent", {"id": "acl-1", "intent": "scene.movie_night",
                                       "slots": {"room": "living"}, "source": "remote-1"})
        reply = json.loads(remote.wait(f"{P}/intent/acl-1/result"))
        self.assertNotIn("error", reply, reply)
        cmd = json.loads(lamp.wait(f"{P}/device/lamp-1/set"))
        self.assertEqual(cmd["intent_id"], "acl-1")
        tv.wait(f"{P}/device/tv-1/set", lambda p: json.loads(p)["intent_id"] == "acl-1")

        # A device commands another device, and itself; speaks for another
        # device; poses as the hub. None of it reaches anyone.
        n_tv, n_lamp = len(tv.seen("#")), len(lamp.seen("#"))
        lamp.publish(f"{P}/device/tv-1/set", {"on": False, "plan_id": "forged"})
        lamp.publish(f"{P}/device/lamp-1/set", {"on": True, "plan_id": "forged"})
        lamp.publish(f"{P}/device/tv-1/state", {"on": True})
        lamp.publish(f"{P}/device/tv-1/availability", b"offline")
        lamp.publish(f"{P}/status", {"state": "offline"})
        lamp.publish(f"{P}/plan/p-forged", {"state": "completed"})
        lamp.publish(f"{P}/intent", {"id": "acl-lamp", "intent": "mode.away"})
        # A phone answers approvals (the hub hears it) but sends no intent.
        phone = self.peer(broker.port, "phone-1")
        phone.publish(f"{P}/intent", {"id": "acl-phone", "intent": "mode.away"})
        phone.publish(f"{P}/device/lamp-1/set", {"on": True})
        phone.publish(f"{P}/approval/p-9/response",
                      {"decision": "approve", "approver": "phone-1", "nonce": "0" * 32,
                       "ts": int(time.time() * 1000), "mac": "0" * 64})
        mon.wait(f"{P}/error", lambda p: b"unknown_plan" in p and b"approval/p-9" in p)
        # The last publish came through, so the earlier ones had their turn.
        time.sleep(0.5)
        self.assertEqual(len(tv.seen("#")), n_tv, tv.seen("#")[n_tv:])
        self.assertEqual(len(lamp.seen("#")), n_lamp, lamp.seen("#")[n_lamp:])
        self.assertFalse([p for _, p in mon.seen(f"{P}/device/+/set") if b"forged" in p])
        for t in (f"{P}/plan/p-forged", f"{P}/intent/acl-lamp/result",
                  f"{P}/intent/acl-phone/result"):
            self.assertEqual(mon.seen(t), [], t)
        self.assertFalse([p for _, p in mon.seen(f"{P}/device/tv-1/state") if b"true" in p])
        self.assertEqual([json.loads(p)["state"] for _, p in mon.seen(f"{P}/status")],
                         ["online"])
        devs = json.loads(harness.run_ctl(hub.data_dir, "devices", "--json").stdout)
        tvrec = [d for d in devs if d["id"] == "tv-1"][0]
        self.assertTrue(tvrec["online"], tvrec)
        self.assertNotEqual(tvrec.get("state", {}).get("on"), True, tvrec)

        # A second hub with a wrong password: a clear error, and it retries.
        bad_pw = self.write("bad.pw", "not-the-password\n")
        bad = self.hub(broker, config=self.config("bad.json", username="hearth-hub",
                                                  password_file=bad_pw,
                                                  client_id="hearth-wrong"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and bad.log().count("refused us") < 2:
            time.sleep(0.1)
        refusals = [l for l in bad.log().splitlines() if "refused us" in l]
        self.assertGreaterEqual(len(refusals), 2, bad.log())
        self.assertIn("refused us: Not authorized: check mqtt.username and the password as "
                      "user hearth-hub; retrying", refusals[0])
        self.assertNotIn("not-the-password", bad.log())
        self.assertTrue(bad.alive())
        # Put the right password in place: the next retry logs in.
        bad.stop()
        with open(bad_pw, "w") as f:
            f.write("hub-pw")
        bad.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "connected to" not in bad.log():
            time.sleep(0.1)
        self.assertIn("as hearth-wrong", bad.log())

    def test_config_errors(self):
        broker = self.broker()
        cases = [
            ({"username": "u", "password": "x", "password_file": "/nonexistent"},
             "give one of them"),
            ({"password_file": "/nonexistent"}, "needs mqtt.username"),
            ({"username": "u", "password_file": os.path.join(self.dir, "nope")},
             "cannot read"),
            ({"username": "u", "password_file": self.write("empty.pw", "\n")},
             "on the first line"),
            ({"tls_cert_file": "/etc/hostname"}, "go together"),
            ({"tls_cert_file": "/etc/hostname", "tls_key_file": "/etc/hostname"},
             "needs mqtt.tls_ca_file"),
            ({"tls_ca_file": os.path.join(self.dir, "no-ca.crt")}, "cannot read"),
        ]
        for i, (keys, want) in enumerate(cases):
            hub = self.hub(broker, config=self.config(f"c{i}.json", **keys))
            deadline = time.monotonic() + 10
            while hub.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertFalse(hub.alive(), keys)
            self.assertEqual(hub.proc.returncode, 2, hub.log())  # a configuration error
            self.assertIn(want, hub.log(), keys)
        # A password file others may read works, with a warning.
        pw = self.write("loose.pw", "pw\n", mode=0o644)
        hub = self.hub(broker, config=self.config("loose.json", username="u", password_file=pw))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "chmod 600" not in hub.log():
            time.sleep(0.05)
        self.assertIn("may be read by others", hub.log())
        self.assertTrue(hub.alive())

    def certs(self):
        """A CA, a broker certificate for 127.0.0.1/localhost, a client
        certificate for the hub; and a second, unrelated CA."""
        if not shutil.which("openssl"):
            self.skipTest("openssl is not installed")
        d = os.path.join(self.dir, "certs")
        os.makedirs(d)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ("ca", "other-ca"):
            run("openssl", "req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                "-days", "2", "-subj", f"/CN=hearth test {ca}", cwd=d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for name, cn in (("broker", "localhost"), ("hub", "hearth-hub")):
            run("openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={cn}", cwd=d)
            run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey",
                "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                *(["-extfile", "san.ext"] if name == "broker" else []), cwd=d)
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o600)
        return d

    def test_tls(self):
        d = self.certs()
        tls_port = harness.free_port()
        broker = self.broker(extra_conf=self.extra + [
            f"listener {tls_port} {harness.LOCALHOST}", f"cafile {d}/ca.crt",
            f"certfile {d}/broker.crt", f"keyfile {d}/broker.key", "require_certificate true"])
        mon = self.peer(broker.port, "monitor")
        mon.subscribe(f"{P}/#")
        pw = self.write("hub.pw", "hub-pw\n")
        keys = dict(username="hearth-hub", password_file=pw, tls_ca_file=f"{d}/ca.crt",
                    tls_cert_file=f"{d}/hub.crt", tls_key_file=f"{d}/hub.key")
        cfg = self.write("tls.json", json.dumps({"broker": f"127.0.0.1:{tls_port}",
                                                 "mqtt": keys}))
        hub = harness.Hub(broker, config=cfg)
        hub.argv = lambda: [harness.program("HEARTHD", "hearthd"), "--data", hub.data_dir,
                            "--config", cfg]
        self.addCleanup(self._no_sanitizer_report, hub)
        self.addCleanup(hub.stop)
        hub.start()
        mon.wait(f"{P}/status", lambda p: json.loads(p)["state"] == "online", timeout=15)
        self.assertIn(f"connected to 127.0.0.1:{tls_port}", hub.log())
        remote = self.peer(broker.port, "remote-1")
        remote.subscribe(f"{P}/intent/+/result")
        remote.publish(f"{P}/intent", {"id": "tls-1", "intent": "scene.movie_night",
                                       "slots": {"room": "living"}, "source": "remote-1"})
        reply = json.loads(remote.wait(f"{P}/intent/tls-1/result"))
        self.assertEqual(reply["id"], "tls-1")  # no device is known: unknown_room is fine
        hub.stop()

        # A hub that trusts another CA is refused, says so, and retries.
        keys["tls_ca_file"] = f"{d}/other-ca.crt"
        keys["client_id"] = "hearth-other"
        cfg2 = self.write("tls2.json", json.dumps({"broker": f"127.0.0.1:{tls_port}",
                                                   "mqtt": keys}))
        bad = harness.Hub(broker, config=cfg2)
        bad.argv = lambda: [harness.program("HEARTHD", "hearthd"), "--data", bad.data_dir,
                            "--config", cfg2]
        self.addCleanup(self._no_sanitizer_report, bad)
        self.addCleanup(bad.stop)
        bad.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and bad.log().count("TLS to the broker") < 2:
            time.sleep(0.1)
        self.assertGreaterEqual(bad.log().count("TLS to the broker"), 2, bad.log())
        self.assertIn("other-ca.crt the CA that signed", bad.log())
        self.assertNotIn("connected to", bad.log())
        self.assertTrue(bad.alive())


if __name__ == "__main__":
    harness.main()
