"""One-tap approvals that cannot be forged, and learned pre-approval (issue 7).

A real broker, hearthd and a simulated home with a front door (a lock in the
hallway) and a thermostat in the living room. The phone is paired with
`hearthctl pair` and answers with HMAC-SHA256 as DESIGN.md section 4 says.

- Unlocking (high risk) waits for an approval: a request on
  <p>/approval/<plan>/request, nothing sent to the door. A forged MAC, an
  unknown approver, another plan's nonce, a stale timestamp and a malformed
  answer are each refused on <p>/error with their code, the plan keeps
  waiting and nothing is dispatched. A valid approval unlocks the door; the
  same response again is refused (unknown_plan). A denial ends a plan
  "denied", silence ends one "expired", and a late answer changes nothing.
- Heating above 24 degrees (medium risk) is approved three times; the fourth
  run is pre-approved and says so; `hearthctl consent revoke` brings the
  question back.
- The audit chain verifies and holds every refusal, by approver name, never
  a key.
"""

import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
EXPIRY_S = 8

HOME = {
    "description": "A front door and a thermostat.",
    "devices": [
        {"id": "door-1", "name": "Front door", "room": "hallway", "kind": "lock",
         "capabilities": ["lock.lock"], "state": {"locked": True}, "latency_ms": 20},
        {"id": "thermo-1", "name": "Living room thermostat", "room": "living",
         "kind": "thermostat", "capabilities": ["climate.setpoint"],
         "state": {"setpoint": 20}, "latency_ms": 20},
        {"id": "lamp-1", "name": "Sofa lamp", "room": "living", "kind": "light",
         "capabilities": ["light.on_off", "light.brightness"],
         "state": {"on": False, "brightness": 0}, "latency_ms": 20},
    ],
}


def mac(key_hex, plan_id, decision, nonce, ts):
    msg = f"{plan_id}|{decision}|{nonce}|{ts}".encode()
    return hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).hexdigest()


class ApprovalsTest(harness.TestCase):

    def setUp(self):
        cfg_dir = harness.workdir("cfg")
        cfg = os.path.join(cfg_dir, "hearth.json")
        with open(cfg, "w") as f:
            json.dump({"approvals": {"expiry_s": EXPIRY_S}}, f)
        home = os.path.join(cfg_dir, "home.json")
        with open(home, "w") as f:
            json.dump(HOME, f)
        self.broker_ = self.broker()
        self.phone = self.client(self.broker_)
        self.phone.subscribe(f"{P}/#")
        self.hub_ = self.hub(self.broker_, config=cfg)
        self.hub_.wait_online(self.phone)
        self.sim(self.broker_, home)
        self.phone.wait_for(topic=f"{P}/device/lamp-1/state", what="the sim's last state")
        r = harness.run_ctl(self.hub_.data_dir, "pair", "phone-1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.key = json.loads(r.stdout)["key"]
        self.seq = 0

    # ---- helpers ----

    def intent(self, intent, slots):
        self.seq += 1
        iid = f"a-{self.seq}"
        mark = self.phone.mark()
        self.phone.publish(f"{P}/intent", {"id": iid, "intent": intent, "slots": slots})
        reply = self.phone.wait_for(topic=f"{P}/intent/{iid}/result", since=mark,
                                    check=self.hub_.check_alive, what=f"the reply to {iid}")
        self.assertNotIn("error", reply.json, reply.json)
        return reply.json, mark

    def request_of(self, plan_id, since):
        return self.phone.wait_for(topic=f"{P}/approval/{plan_id}/request", since=since,
                                   check=self.hub_.check_alive,
                                   what=f"the approval request of {plan_id}").json

    def answer(self, plan_id, decision="approve", approver="phone-1", nonce=None, ts=None,
               key=None, mac_hex=None, **extra):
        ts = int(time.time() * 1000) if ts is None else ts
        body = {"decision": decision, "approver": approver, "nonce": nonce, "ts": ts,
                "mac": mac_hex or mac(key or self.key, plan_id, decision, nonce, ts)}
        body.update(extra)
        mark = self.phone.mark()
        self.phone.publish(f"{P}/approval/{plan_id}/response", body)
        return body, mark

    def refused(self, plan_id, code, mark):
        topic = f"{P}/approval/{plan_id}/response"
        err = self.phone.wait_for(lambda m: m.json and m.json.get("topic") == topic,
                                  topic=f"{P}/error", since=mark, check=self.hub_.check_alive,
                                  what=f"{code} for {plan_id}")
        self.assertEqual(err.json["error"], code, err.json)
        return err.json

    def plan_state(self, plan_id, state, since=0, timeout=15):
        return self.phone.wait_for(lambda m: m.json and m.json.get("state") == state,
                                   topic=f"{P}/plan/{plan_id}", since=since, timeout=timeout,
                                   check=self.hub_.check_alive,
                                   what=f"plan {plan_id} {state}").json

    def sets(self, device, since):
        return self.phone.messages(f"{P}/device/{device}/set", since=since)

    # ---- tests ----

    def test_unlock_needs_one_valid_tap(self):
        reply, start = self.intent("door.unlock", {"room": "hallway"})
        pid = reply["plan_id"]
        self.assertEqual(reply["state"], "awaiting_approval")
        self.assertEqual(reply["risk"], "high")
        self.assertIn("Needs the owner's approval: it unlocks Front door", reply["rationale"])
        req = self.request_of(pid, start)
        self.assertEqual(req["plan_id"], pid)
        self.assertEqual(req["risk"], "high")
        self.assertRegex(req["nonce"], r"^[0-9a-f]{32}$")
        self.assertGreater(req["expires_at"], time.time() * 1000)
        self.assertIn("Front door", req["summary"])
        nonce = req["nonce"]

        # A second plan waits too: its nonce is not the first one's.
        reply2, m2 = self.intent("door.unlock", {"room": "hallway"})
        pid2 = reply2["plan_id"]
        nonce2 = self.request_of(pid2, m2)["nonce"]
        self.assertNotEqual(nonce, nonce2)

        # Each forgery is refused, reported, and changes nothing.
        _, m = self.answer(pid, nonce=nonce, key="11" * 32)
        self.assertIn("MAC", self.refused(pid, "bad_mac", m)["detail"])
        _, m = self.answer(pid, nonce=nonce, approver="phone-9")
        self.refused(pid, "unknown_approver", m)
        _, m = self.answer(pid2, nonce=nonce)  # valid MAC for pid2, pid's nonce
        self.refused(pid2, "bad_nonce", m)
        _, m = self.answer(pid, nonce=nonce, ts=int(time.time() * 1000) - 3600 * 1000)
        self.refused(pid, "stale", m)
        _, m = self.answer(pid, nonce="XYZ")
        self.refused(pid, "bad_request", m)
        _, m = self.answer(pid, decision="maybe", nonce=nonce)
        self.refused(pid, "bad_request", m)
        time.sleep(0.3)
        self.assertEqual(self.sets("door-1", start), [], "nothing is dispatched before approval")

        # One valid tap: the door unlocks.
        body, m = self.answer(pid, nonce=nonce)
        cmd = self.phone.wait_for(topic=f"{P}/device/door-1/set", since=m,
                                  check=self.hub_.check_alive, what="the unlock command").json
        self.assertEqual(cmd["locked"], False)
        self.assertEqual(cmd["plan_id"], pid)
        self.plan_state(pid, "completed", since=m)
        # The same response again: the nonce is spent.
        m = self.phone.mark()
        self.phone.publish(f"{P}/approval/{pid}/response", body)
        self.refused(pid, "unknown_plan", m)

        # A denial ends the other plan; nothing is sent for it.
        _, m = self.answer(pid2, decision="deny", nonce=nonce2)
        ev = self.plan_state(pid2, "denied", since=m)
        self.assertIn("denied by phone-1", ev.get("reason", ""))
        time.sleep(0.3)
        self.assertFalse([s for s in self.sets("door-1", start) if s.json.get("plan_id") == pid2])

        # Silence: the plan expires, and a late answer changes nothing. (Someone
        # locks the door by hand first, or there would be nothing to do.)
        m = self.phone.mark()
        self.phone.publish(f"{P}/device/door-1/set", {"locked": True})
        self.phone.wait_for(lambda msg: msg.json and msg.json.get("locked") is True,
                            topic=f"{P}/device/door-1/state", since=m, what="the door locked")
        time.sleep(0.2)
        reply3, m3 = self.intent("door.unlock", {"room": "hallway"})
        pid3 = reply3["plan_id"]
        nonce3 = self.request_of(pid3, m3)["nonce"]
        ev = self.plan_state(pid3, "expired", since=m3, timeout=EXPIRY_S + 10)
        self.assertIn("no answer", ev.get("reason", ""))
        _, m = self.answer(pid3, nonce=nonce3)
        self.refused(pid3, "unknown_plan", m)
        time.sleep(0.3)
        self.assertFalse([s for s in self.sets("door-1", start) if s.json.get("plan_id") == pid3])

        # Episodes say how each ended; the audit chain holds the refusals by name.
        eps = json.loads(harness.run_ctl(self.hub_.data_dir, "episodes", "--json").stdout)
        outcome = {e["id"]: e["outcome"] for e in eps}
        self.assertEqual((outcome[pid], outcome[pid2], outcome[pid3]),
                         ("completed", "denied", "expired"))
        r = harness.run_ctl(self.hub_.data_dir, "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = harness.run_ctl(self.hub_.data_dir, "audit", "export")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(self.key, r.stdout)
        for kind in ("approval.requested", "approval.rejected", "approval.granted",
                     "approval.denied", "approval.expired"):
            self.assertIn(kind, r.stdout)
        with open(self.hub_.log_path) as f:
            self.assertNotIn(self.key, f.read())

    def test_three_approvals_make_a_preapproval(self):
        scope = "recipe:climate.set/room:living"
        temps = [26, 25, 26]
        for t in temps:
            reply, m = self.intent("climate.set", {"room": "living", "temperature": t})
            self.assertEqual(reply["state"], "awaiting_approval", reply)
            self.assertEqual(reply["risk"], "medium")
            req = self.request_of(reply["plan_id"], m)
            _, m = self.answer(reply["plan_id"], nonce=req["nonce"])
            self.plan_state(reply["plan_id"], "completed", since=m)

        # The fourth is pre-approved: it runs at once and says why.
        reply, m = self.intent("climate.set", {"room": "living", "temperature": 25})
        self.assertEqual(reply["state"], "running", reply)
        self.assertTrue(reply["approval"]["preapproved"])
        self.assertIn(f"Pre-approved: it would need the owner's approval", reply["rationale"])
        self.assertIn(f"standing pre-approval of {scope} (set by phone-1)", reply["rationale"])
        self.plan_state(reply["plan_id"], "completed", since=m)
        self.assertEqual(self.phone.messages(f"{P}/approval/{reply['plan_id']}/request"), [])

        r = harness.run_ctl(self.hub_.data_dir, "consent", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {c["scope"]: c for c in json.loads(r.stdout)}
        self.assertTrue(rows[scope]["standing"])
        self.assertEqual(rows[scope]["by"], "phone-1")
        self.assertEqual(rows[scope]["approved"], 3)
        r = harness.run_ctl(self.hub_.data_dir, "consent")
        self.assertIn(scope, r.stdout)

        # Revoked: the question comes back.
        r = harness.run_ctl(self.hub_.data_dir, "consent", "revoke", scope)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed", r.stdout)
        reply, m = self.intent("climate.set", {"room": "living", "temperature": 26})
        self.assertEqual(reply["state"], "awaiting_approval", reply)
        self.request_of(reply["plan_id"], m)
        r = harness.run_ctl(self.hub_.data_dir, "audit", "export")
        self.assertIn("enhancement.preapproval", r.stdout)
        self.assertIn("consent.revoked", r.stdout)

        # High risk is never learned, but the owner's own grant covers it.
        r = harness.run_ctl(self.hub_.data_dir, "consent", "grant", "recipe:door.unlock/room:hallway")
        self.assertEqual(r.returncode, 0, r.stderr)
        reply, m = self.intent("door.unlock", {"room": "hallway"})
        self.assertEqual(reply["state"], "running", reply)
        self.assertIn("(set by owner)", reply["rationale"])
        self.plan_state(reply["plan_id"], "completed", since=m)


if __name__ == "__main__":
    harness.main()
