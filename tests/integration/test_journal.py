"""The plan journal across kill -9 (issue 3, DESIGN.md section 5).

A plan still waiting on a slow blind is journaled; hearthd dies with kill -9;
on start the journal is replayed and the plan resumes (issue 6 item 8): the
confirmed lamp step is not sent again, the dispatched blind step is checked
against the blind's state once it arrived (plan.resume_settle_ms) and, not
satisfied yet, re-sent with its full timeout; the blind then reports and the
plan completes. Its episode is stored once and the journal is empty again.
The reply "running" was only sent once the plan was journaled.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
HOME = {"devices": [
    {"id": "lamp-1", "room": "living", "kind": "light",
     "capabilities": ["light.on_off", "light.brightness"], "state": {"on": False, "brightness": 0},
     "latency_ms": 10},
    {"id": "blind-1", "room": "living", "kind": "blind", "capabilities": ["cover.position"],
     "state": {"position": 100}, "latency_ms": 4000},
]}


class JournalTest(harness.TestCase):

    def test_interrupted_plan_resumes_after_kill9(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker)
        hub.wait_online(phone)
        home = os.path.join(harness.workdir("home"), "slow.json")
        with open(home, "w") as f:
            json.dump(HOME, f)
        sim = self.sim(broker, home)
        phone.wait_for(topic=f"{P}/device/blind-1/state")

        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "j-1", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}})
        reply = phone.wait_for(topic=f"{P}/intent/j-1/result", since=mark)
        self.assertEqual(reply.json["state"], "running")
        plan_id = reply.json["plan_id"]
        # The lamp confirms; the blind takes 4 s: the plan is in flight.
        phone.wait_for(lambda m: {s["device"]: s["state"] for s in m.json["steps"]}
                       .get("lamp-1") == "confirmed", topic=f"{P}/plan/{plan_id}", since=mark)
        hub.kill9()
        self.assertNotIn(plan_id, self.episode_ids(hub))

        mark = phone.mark()
        hub.start()
        end = phone.wait_for(lambda m: m.json["state"] in ("completed", "compensated", "failed"),
                             topic=f"{P}/plan/{plan_id}", since=mark, timeout=20,
                             check=hub.check_alive, what="the resumed plan's end")
        self.assertEqual(end.json["state"], "completed", end.json)
        steps = {s["device"]: s["state"] for s in end.json["steps"]}
        self.assertEqual(steps, {"lamp-1": "confirmed", "blind-1": "confirmed"})
        # The confirmed lamp step was never sent again; the blind's was, once,
        # after the restart (it had not landed yet).
        cmds = {}
        for c in sim.commands():
            self.assertEqual(c["payload"]["plan_id"], plan_id)
            cmds.setdefault(c["device"], []).append(c["payload"])
        self.assertEqual(len(cmds["lamp-1"]), 1, cmds)
        self.assertEqual(len(cmds["blind-1"]), 2, cmds)
        self.assertTrue(all(c["step"] == "covers" and not c.get("compensation")
                            for c in cmds["blind-1"]), cmds)
        self.assertIn("taking it up again", harness.read_text(hub.log_path))
        ep = [e for e in self.episodes(hub) if e["id"] == plan_id][0]
        self.assertEqual(ep["outcome"], "completed")
        tl = {s["device"]: s["timeline"] for s in ep["steps"]}
        self.assertGreaterEqual(tl["blind-1"]["confirmed"], tl["blind-1"]["sent"])
        # Closed once: a second restart finds nothing left in the journal.
        self.assertEqual(hub.stop(), 0)
        hub.start()
        hub.wait_online(phone)
        self.assertEqual([e["id"] for e in self.episodes(hub)].count(plan_id), 1)
        self.assertNotIn("taking it up again", harness.read_text(hub.log_path)
                         .split("==== ")[-1])

    def episodes(self, hub):
        r = harness.run_ctl(hub.data_dir, "episodes", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def episode_ids(self, hub):
        return {e["id"] for e in self.episodes(hub)}


if __name__ == "__main__":
    harness.main()
