"""Backup and restore end to end (issue 3 item 5, DESIGN.md sections 5 and 6).

A backup taken with `hearthctl backup` while intents keep flowing into a
running hearthd restores (`hearthctl restore`) into a new data dir, and a
hearthd started on it comes online with every episode the backup held. A
backup whose data.mdb had bytes flipped is refused with exit status 1 and a
one-line reason, and the live store stays byte for byte what it was; so is
a restore while hearthd runs. `hearthctl health` shows the store's use.
"""

import hashlib
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
ALL = ("--limit", "1000000")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def flip_middle(path, n=64):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        data = bytearray(f.read(n))
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in data))


class BackupRestoreTest(harness.TestCase):

    def setUp(self):
        self.broker_ = self.broker()
        self.phone = self.client(self.broker_)
        self.phone.subscribe(f"{P}/#")
        self.hub_ = self.hub(self.broker_)
        self.hub_.wait_online(self.phone)
        self.sim_ = self.sim(self.broker_, "movie.json")
        self.phone.wait_for(topic=f"{P}/device/bedlamp-1/state", what="the sim's last state")
        self.data = self.hub_.data_dir

    def run_intent(self, iid, room="living"):
        mark = self.phone.mark()
        self.phone.publish(f"{P}/intent", {"id": iid, "intent": "scene.movie_night",
                                           "slots": {"room": room}})
        reply = self.phone.wait_for(topic=f"{P}/intent/{iid}/result", since=mark)
        self.assertNotIn("error", reply.json, reply)
        plan_id = reply.json["plan_id"]
        if reply.json["state"] != "completed":
            self.phone.wait_for(lambda m: m.json["state"] == "completed",
                                topic=f"{P}/plan/{plan_id}", since=mark,
                                what=f"plan {plan_id} completed")
        return plan_id

    def episode_ids(self, data_dir):
        r = harness.run_ctl(data_dir, "episodes", "--json", *ALL)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {e["id"] for e in json.loads(r.stdout)}

    def backup(self, dest, *extra):
        r = harness.run_ctl(self.data, "backup", dest, *extra, timeout=60)
        self.assertEqual(r.returncode, 0, f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def test_backup_under_load_restores_into_a_working_hub(self):
        for i in range(3):
            self.run_intent(f"warm-{i}", room="living" if i % 2 else "bedroom")

        # Intents keep coming, from their own client, while the backup runs.
        load = self.client(self.broker_)
        stop = threading.Event()
        sent = []

        def send():
            while not stop.is_set():
                iid = f"load-{len(sent)}"
                load.publish(f"{P}/intent", {"id": iid, "intent": "scene.movie_night",
                                             "slots": {"room": ("living", "bedroom")[len(sent) % 2]}})
                sent.append(iid)
                time.sleep(0.01)

        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        try:
            harness._wait_until(lambda: len(sent) >= 20, 10, "20 intents sent")
            bk = os.path.join(harness.workdir("backups"), "nightly", "one")
            r = self.backup(bk)
            harness._wait_until(lambda: len(sent) >= 40, 10, "20 more intents sent")
        finally:
            stop.set()
            worker.join(10)

        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], f"backing up {self.data} to {bk} ...", r.stdout)
        m = re.fullmatch(re.escape(f"backup {bk}: ") + r"[\d.]+ (B|KiB|MiB), schema (\d+), "
                         r"(\d+) episodes?, audit chain verifies \((\d+) records?\)", lines[-1])
        self.assertIsNotNone(m, r.stdout)
        self.assertGreaterEqual(int(m.group(3)), 3)
        self.assertEqual(sorted(os.listdir(bk)), ["backup.json", "data.mdb"])
        self.assertEqual(os.stat(bk).st_mode & 0o777, 0o700)

        # What the backup holds, read from the backup itself.
        at_backup = self.episode_ids(bk)
        self.assertEqual(len(at_backup), int(m.group(3)))

        # --json says the same in one line.
        bkj = os.path.join(harness.workdir("backups"), "two")
        rj = self.backup(bkj, "--json")
        doc = json.loads(rj.stdout)
        self.assertEqual(doc["backup"], bkj)
        self.assertTrue(doc["checksum_verified"])
        self.assertTrue(doc["audit_verified"])
        self.assertEqual(doc["schema"], int(m.group(2)))
        self.assertEqual(len(doc["sha256"]), 64)

        # A restore while hearthd runs is refused and changes nothing.
        before = sha256(os.path.join(self.data, "data.mdb"))
        busy = harness.run_ctl(self.data, "restore", bk)
        self.assertEqual(busy.returncode, 1, busy.stdout)
        self.assertIn("stop hearthd first", busy.stderr)
        self.assertEqual(len(busy.stderr.strip().splitlines()), 1, busy.stderr)

        self.assertEqual(self.hub_.stop(), 0)
        self.assertNotIn("before-restore", " ".join(os.listdir(self.data)))

        # Restore into a data dir that does not exist yet.
        fresh = os.path.join(harness.workdir("restored"), "var", "hearth")
        rr = harness.run_ctl(fresh, "restore", bk, timeout=60)
        self.assertEqual(rr.returncode, 0, f"stdout: {rr.stdout}\nstderr: {rr.stderr}")
        self.assertIn("SHA-256 matches backup.json", rr.stdout)
        self.assertIn("the chain verifies", rr.stdout)
        self.assertIn(f"restored {bk} into {fresh}", rr.stdout)
        self.assertIn(f"there was no store in {fresh} before", rr.stdout)
        self.assertEqual(sha256(os.path.join(fresh, "data.mdb")),
                         sha256(os.path.join(bk, "data.mdb")))

        hub2 = self.hub(self.broker_, data_dir=fresh)
        hub2.wait_online(self.phone, timeout=20)
        # Every episode of the backup is there (hearthd may close journaled plans too).
        after = self.episode_ids(fresh)
        self.assertTrue(at_backup <= after, sorted(at_backup - after))
        human = harness.run_ctl(fresh, "episodes")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("scene.movie_night", human.stdout)
        # And it works: a new intent completes and is recorded.
        self.phone.wait_for(topic=f"{P}/device/bedlamp-1/state", what="device state")
        plan_id = self.run_intent("after-restore")
        harness._wait_until(lambda: plan_id in self.episode_ids(fresh), 10,
                            "the new episode in the restored store")

        # Restoring over an existing store keeps the old one beside it.
        self.assertEqual(hub2.stop(), 0)
        old = sha256(os.path.join(fresh, "data.mdb"))
        again = harness.run_ctl(fresh, "restore", bkj, "--json")
        self.assertEqual(again.returncode, 0, again.stderr)
        kept = json.loads(again.stdout)["kept"]
        self.assertTrue(os.path.basename(kept).startswith("data.mdb.before-restore-"), kept)
        self.assertEqual(sha256(kept), old)

    def test_corrupted_backup_is_refused_and_the_store_untouched(self):
        plan_id = self.run_intent("before")
        bk = os.path.join(harness.workdir("backups"), "bad")
        self.backup(bk)
        self.run_intent("after")
        self.assertEqual(self.hub_.stop(), 0)

        live = os.path.join(self.data, "data.mdb")
        before = sha256(live)
        listing = sorted(os.listdir(self.data))
        flip_middle(os.path.join(bk, "data.mdb"))
        r = harness.run_ctl(self.data, "restore", bk)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("SHA-256", r.stderr)
        self.assertIn("use another backup", r.stderr)
        self.assertNotIn("restored", r.stdout)
        self.assertEqual(sha256(live), before)
        now = sorted(os.listdir(self.data))
        self.assertEqual([f for f in now if "restore" in f], [], now)
        self.assertTrue(set(now) <= set(listing) | {"hearthd.lock"}, now)

        # Truncated, too.
        with open(os.path.join(bk, "data.mdb"), "r+b") as f:
            f.truncate(os.path.getsize(os.path.join(bk, "data.mdb")) // 2)
        r = harness.run_ctl(self.data, "restore", bk)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(sha256(live), before)

        # The hub starts on its untouched store, every episode there.
        self.hub_.start()
        self.hub_.wait_online(self.phone, timeout=20)
        self.assertIn(plan_id, self.episode_ids(self.data))

    def check_health(self, doc, source):
        self.assertEqual(doc.get("source", "daemon"), source, doc)
        store = doc["store"]
        self.assertEqual(store["dir"], self.data)
        self.assertEqual(store["schema_version"], 2)
        self.assertGreater(store["map_used"], 0)
        self.assertLessEqual(store["map_used"], store["map_size"])
        self.assertTrue(0 <= store["map_use_pct"] <= 100)
        dbs = {d["name"]: d["entries"] for d in doc["databases"]}
        self.assertEqual(set(dbs), {"meta", "episodes", "devices", "semantic", "constraints",
                                    "recipes", "journal", "consents", "audit", "secrets"})
        self.assertGreaterEqual(dbs["episodes"], 1)

    def test_health_shows_store_use(self):
        self.run_intent("h-1")
        # hearthd answers (the same shape as the store's view, without "source").
        r = harness.run_ctl(self.data, "health", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_health(json.loads(r.stdout), "daemon")
        human = harness.run_ctl(self.data, "health")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertRegex(human.stdout, r"(?m)^store used: +[\d.]+ \w+ of [\d.]+ \w+ \([\d.]+ %\)$")
        self.assertRegex(human.stdout, r"(?m)^episodes +\d+$")

        # Without hearthd: the store's view, and exit status 1.
        self.assertEqual(self.hub_.stop(), 0)
        r = harness.run_ctl(self.data, "health", "--json")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("not running", r.stderr)
        self.check_health(json.loads(r.stdout), "store")
        human = harness.run_ctl(self.data, "health")
        self.assertEqual(human.returncode, 1, human.stdout)
        self.assertRegex(human.stdout, r"(?m)^store used: ")
        self.assertRegex(human.stdout, r"(?m)^audit +\d+$")

if __name__ == "__main__":
    harness.main()
