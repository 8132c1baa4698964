"""Pairing phones (issue 7, item 3).

`hearthctl pair NAME` makes a 256-bit key, prints the pairing payload and the
key (hex, last line), and stores it in the secrets database; a MAC computed
in Python with the printed key equals the one the library computes with the
stored key (the unit program test_secrets_approver checks it on this store).
A paired name is refused unless --rotate; `pairs` lists names and dates and
never a key; `unpair` forgets; hostile names are refused. It works with the
daemon running (through its socket) and stopped (on the store itself); keys
never reach the log or the audit chain, whose records name the approver.
"""

import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HEX64 = re.compile(r"^[0-9a-f]{64}$")
MSG = "p-1|approve|0011aabb|1795367052065"


def mac(key_hex, msg=MSG):
    return hmac.new(bytes.fromhex(key_hex), msg.encode(), hashlib.sha256).hexdigest()


class PairingTest(harness.TestCase):

    def ctl(self, *args, rc=0):
        r = harness.run_ctl(self.data, *args)
        self.assertEqual(r.returncode, rc, f"hearthctl {args}: {r.stdout}\n{r.stderr}")
        return r

    def library_mac_ok(self, name, key_hex):
        """The unit program signs MSG with the stored key of NAME; True when it
        equals what Python made with key_hex."""
        prog = os.path.join(os.path.dirname(harness.program("HEARTHCTL", "hearthctl")),
                            "test_secrets_approver")
        env = dict(os.environ, HEARTH_PAIR_DIR=self.data, HEARTH_PAIR_NAME=name,
                   HEARTH_PAIR_MSG=MSG, HEARTH_PAIR_MAC=mac(key_hex))
        r = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        self.assertNotIn("SKIPPED ] test_paired_key_signs_like_python", out)
        return r.returncode == 0

    def pair(self, name, *extra):
        r = self.ctl("pair", name, *extra)
        lines = r.stdout.strip().splitlines()
        key = lines[-1]
        self.assertRegex(key, HEX64, r.stdout)
        payload = json.loads(lines[-3])
        self.assertEqual(payload["approver"], name)
        self.assertEqual(payload["key"], key)
        self.assertEqual(payload["hub"], "hearth/home")
        return key, payload, r

    def audit_records(self):
        r = self.ctl("audit", "export")
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def test_pair_rotate_list_unpair(self):
        broker = self.broker()
        hub = self.hub(broker)
        self.data = hub.data_dir
        phone = self.client(broker)
        hub.wait_online(phone)

        key, payload, r = self.pair("phone-1", "--broker", "192.168.1.10:1883")
        self.assertEqual(payload["broker"], "192.168.1.10:1883")
        self.assertEqual(set(payload), {"hub", "broker", "approver", "key"})
        self.assertIn("phone-1 is paired", r.stdout)
        self.assertTrue(self.library_mac_ok("phone-1", key))
        self.assertFalse(self.library_mac_ok("phone-1", "00" * 32))

        # Without --broker the daemon's own address is used, and flagged.
        key2, payload2, r = self.pair("phone-2")
        self.assertEqual(payload2["broker"], broker.address)
        self.assertIn("loopback", r.stderr)
        self.assertNotEqual(key, key2)

        # A paired name needs --rotate; the key stays until then.
        r = self.ctl("pair", "phone-1", rc=1)
        self.assertIn("already paired", r.stderr)
        self.assertIn("--rotate", r.stderr)
        self.assertTrue(self.library_mac_ok("phone-1", key))
        new, _, r = self.pair("phone-1", "--rotate")
        self.assertIn("new key", r.stdout)
        self.assertNotEqual(new, key)
        self.assertFalse(self.library_mac_ok("phone-1", key))
        self.assertTrue(self.library_mac_ok("phone-1", new))

        # Hostile names: usage errors, nothing stored.
        for bad in ("a/b", "+", "#", "phone 1", "x" * 65, "", "../etc", "ph\u00e9"):
            r = self.ctl("pair", bad, rc=2)
            self.assertIn("not a valid name", r.stderr.splitlines()[0])
        self.ctl("unpair", "a/b", rc=2)

        r = self.ctl("pairs")
        self.assertIn("phone-1", r.stdout)
        self.assertIn("phone-2", r.stdout)
        for k in (key, key2, new):
            self.assertNotIn(k, r.stdout)
        pairs = json.loads(self.ctl("pairs", "--json").stdout)
        self.assertEqual([p["approver"] for p in pairs], ["phone-1", "phone-2"])
        self.assertTrue(all(set(p) == {"approver", "paired_at"} for p in pairs), pairs)
        self.assertTrue(all(abs(p["paired_at"] - harness.now_ms()) < 120000 for p in pairs))

        r = self.ctl("unpair", "phone-2")
        self.assertIn("phone-2 is unpaired", r.stdout)
        r = self.ctl("unpair", "phone-2", rc=1)
        self.assertIn("not paired", r.stderr)
        self.assertFalse(self.library_mac_ok("phone-2", key2))
        self.assertEqual([p["approver"] for p in json.loads(self.ctl("pairs", "--json").stdout)],
                         ["phone-1"])

        # The audit chain names the approvers, holds no key, and verifies.
        recs = self.audit_records()
        kinds = [(r["kind"], r["subject"]) for r in recs if r["kind"].startswith("approver.")]
        self.assertEqual(kinds, [("approver.paired", "phone-1"), ("approver.paired", "phone-2"),
                                 ("approver.paired", "phone-1"), ("approver.unpaired", "phone-2")])
        text = self.ctl("audit", "export").stdout + hub.log()
        for k in (key, key2, new):
            self.assertNotIn(k, text)
        self.ctl("audit", "verify")

        # Stopped daemon: the CLI changes the store itself, the same way.
        hub.stop()
        r = harness.run_ctl(self.data, "pair", "phone-3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not running", r.stderr)
        self.assertIn("names no broker", r.stderr)
        key3 = r.stdout.strip().splitlines()[-1]
        self.assertRegex(key3, HEX64)
        self.assertNotIn("broker", json.loads(r.stdout.strip().splitlines()[-3]))
        self.assertTrue(self.library_mac_ok("phone-3", key3))
        self.ctl("pair", "phone-3", rc=1)
        self.ctl("unpair", "phone-1")
        self.assertEqual([p["approver"] for p in json.loads(self.ctl("pairs", "--json").stdout)],
                         ["phone-3"])
        self.ctl("audit", "verify")
        for f in ("data.mdb", "lock.mdb"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.data, f)).st_mode), 0o600)

        # Back up: the daemon sees what the CLI did, and keeps one chain.
        hub.start()
        hub.wait_online(phone)
        self.assertEqual([p["approver"] for p in json.loads(self.ctl("pairs", "--json").stdout)],
                         ["phone-3"])
        self.ctl("unpair", "phone-3")
        self.ctl("audit", "verify")
        kinds = [(r["kind"], r["subject"]) for r in self.audit_records()
                 if r["kind"].startswith("approver.")]
        self.assertEqual(kinds[-3:], [("approver.paired", "phone-3"),
                                      ("approver.unpaired", "phone-1"),
                                      ("approver.unpaired", "phone-3")])
        self.assertNotIn(key3, self.ctl("audit", "export").stdout + hub.log())

    def test_no_store(self):
        self.data = os.path.join(harness.workdir("nostore"), "data")
        r = self.ctl("pair", "phone-1", rc=1)
        self.assertIn("cannot be opened", r.stderr)
        self.assertFalse(os.path.exists(self.data), "a mistyped --data makes no store")
        self.ctl("pairs", rc=1)


if __name__ == "__main__":
    harness.main()
