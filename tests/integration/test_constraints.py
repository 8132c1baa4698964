"""Hard rules and the policy hash (issue 3, DESIGN.md sections 3 and 5).

Rules come from the configuration (constraints.file) and from the CLI
(hearthctl constraints load/add/remove). Every plan records the policy hash
(SHA-256 over the canonical rule set) it was planned under; a change of rules
changes the hash of the next plan and is written into the audit chain; a bad
rule is refused with the field that is wrong and changes nothing.
"""

import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
RULE_AWAY = {"id": "no_unlock_when_away",
             "when": {"flag": "someone_home", "is": False},
             "forbid": {"capability": "lock.lock", "args": {"locked": False}},
             "approval_lifts": True,
             "reason": "never unlock while nobody is home"}
RULE_HEAT = {"id": "heat_cap", "cap": {"capability": "climate.setpoint",
                                       "property": "setpoint", "max": 24},
             "reason": "the heating goes no higher than 24 degrees"}


def canonical_hash(rules):
    """The documented policy hash: rules sorted by id, keys sorted, compact."""
    text = json.dumps(sorted(rules, key=lambda r: r["id"]), sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ConstraintsTest(harness.TestCase):

    def write(self, name, obj):
        path = os.path.join(harness.workdir("rules"), name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def ctl_rules(self, hub):
        r = harness.run_ctl(hub.data_dir, "constraints", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def plan_hash(self, phone, iid):
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": iid, "intent": "scene.movie_night",
                                      "slots": {"room": "living"}, "preview": True})
        return phone.wait_for(topic=f"{P}/intent/{iid}/result", since=mark).json["policy_hash"]

    def test_rules_from_config_and_cli(self):
        rules_file = self.write("rules.json", [RULE_AWAY])
        config = self.write("hearth.json", {"constraints": {"file": rules_file}})
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker, config=config)
        hub.wait_online(phone)
        self.sim(broker, "movie.json")
        phone.wait_for(topic=f"{P}/device/bedlamp-1/state")

        listed = self.ctl_rules(hub)
        self.assertEqual([r["id"] for r in listed["rules"]], ["no_unlock_when_away"])
        self.assertEqual(listed["policy_hash"], canonical_hash([RULE_AWAY]))
        self.assertEqual(self.plan_hash(phone, "c-1"), listed["policy_hash"])

        # Add a rule through the CLI: the next plan is planned under the new hash.
        r = harness.run_ctl(hub.data_dir, "constraints", "add", self.write("heat.json", RULE_HEAT))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 hard rules", r.stdout)
        new_hash = canonical_hash([RULE_AWAY, RULE_HEAT])
        self.assertEqual(self.ctl_rules(hub)["policy_hash"], new_hash)
        self.assertEqual(self.plan_hash(phone, "c-2"), new_hash)

        # A bad rule is refused, naming the field, and changes nothing.
        bad = dict(RULE_HEAT, id="bad", cap={"capability": "climate.setpoint",
                                             "property": "setpoint"})
        r = harness.run_ctl(hub.data_dir, "constraints", "add", self.write("bad.json", bad))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cap", r.stderr)
        self.assertEqual(self.ctl_rules(hub)["policy_hash"], new_hash)

        # Remove it again; the audit chain holds both changes and verifies.
        r = harness.run_ctl(hub.data_dir, "constraints", "remove", "heat_cap")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.plan_hash(phone, "c-3"), canonical_hash([RULE_AWAY]))
        v = harness.run_ctl(hub.data_dir, "audit", "verify")
        self.assertEqual(v.returncode, 0, v.stderr)
        export = harness.run_ctl(hub.data_dir, "audit", "export")
        records = [json.loads(line) for line in export.stdout.splitlines()]
        changes = [r for r in records if r["kind"] == "constraints.changed"]
        self.assertEqual(len(changes), 2, records)
        self.assertEqual(changes[0]["detail"]["policy_hash"], new_hash)
        started = [r for r in records if r["kind"] == "hub.started"]
        self.assertEqual(started[0]["detail"]["policy_hash"], canonical_hash([RULE_AWAY]))

        # The episode of a plan run records its policy hash too.
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "c-4", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}})
        reply = phone.wait_for(topic=f"{P}/intent/c-4/result", since=mark)
        phone.wait_for(lambda m: m.json["state"] == "completed",
                       topic=f"{P}/plan/{reply.json['plan_id']}", since=mark)
        eps = json.loads(harness.run_ctl(hub.data_dir, "episodes", "--json").stdout)
        ep = [e for e in eps if e["id"] == reply.json["plan_id"]][0]
        self.assertEqual(ep["policy_hash"], canonical_hash([RULE_AWAY]))

    def test_offline_change_is_applied_and_audited(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/status")
        hub = self.hub(broker)
        hub.wait_online(phone)
        self.assertEqual(hub.stop(), 0)

        r = harness.run_ctl(hub.data_dir, "constraints", "add", self.write("heat.json", RULE_HEAT))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not running", r.stderr)
        self.assertEqual(self.ctl_rules(hub)["policy_hash"], canonical_hash([RULE_HEAT]))
        records = [json.loads(line) for line in
                   harness.run_ctl(hub.data_dir, "audit", "export").stdout.splitlines()]
        change = [r for r in records if r["kind"] == "constraints.changed"]
        self.assertEqual(len(change), 1, records)
        self.assertEqual(change[0]["detail"]["by"], "hearthctl")
        self.assertEqual(harness.run_ctl(hub.data_dir, "audit", "verify").returncode, 0)

        # A mistyped --data does not make a new store somewhere.
        nowhere = os.path.join(harness.workdir("typo"), "no-such-store")
        r = harness.run_ctl(nowhere, "constraints", "remove", "heat_cap")
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(nowhere))

        # The daemon plans under the rules it finds at start.
        hub.start()
        hub.wait_online(phone)
        self.assertEqual(self.ctl_rules(hub)["policy_hash"], canonical_hash([RULE_HEAT]))

    def test_bad_rules_file_stops_the_daemon_with_a_reason(self):
        rules_file = self.write("rules.json", [dict(RULE_AWAY, when={"flag": 7, "is": True})])
        config = self.write("hearth.json", {"constraints": {"file": rules_file}})
        broker = self.broker()
        hub = self.hub(broker, config=config, start=False)
        hub.start()
        deadline = time.monotonic() + 10
        while hub.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(hub.alive(), "hearthd must refuse a bad rules file")
        log = harness.read_text(hub.log_path)
        self.assertIn("rules[0].when.flag", log)


if __name__ == "__main__":
    harness.main()
