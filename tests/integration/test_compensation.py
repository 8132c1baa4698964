"""A plan that cannot finish puts things back (DESIGN.md section 4, Plans).

The living-room blind drops every command (failure_rate 1). The step waits
for confirmation (300 ms in the test recipe folder), is re-sent twice with
backoff, then fails; the plan goes "compensating", sends the lamp and the TV
back to the values they showed before, and ends "compensated" once they
report them. The episode says so.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
HERE = os.path.dirname(os.path.abspath(__file__))
HOME = {"devices": [
    {"id": "lamp-1", "name": "Sofa lamp", "room": "living", "kind": "light",
     "capabilities": ["light.on_off", "light.brightness"], "state": {"on": True, "brightness": 80},
     "latency_ms": 20},
    {"id": "blind-1", "name": "Stuck blind", "room": "living", "kind": "blind",
     "capabilities": ["cover.position"], "state": {"position": 100}, "latency_ms": 20,
     "failure_rate": 1.0},
    {"id": "tv-1", "name": "TV", "room": "living", "kind": "tv", "capabilities": ["media.power"],
     "state": {"on": False}, "latency_ms": 20},
]}


class CompensationTest(harness.TestCase):

    def test_unconfirmed_step_retried_then_compensated(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker, args=["--recipes", os.path.join(HERE, "recipes")])
        hub.wait_online(phone)
        home = os.path.join(harness.workdir("home"), "stuck.json")
        with open(home, "w") as f:
            json.dump(HOME, f)
        sim = self.sim(broker, home)
        phone.wait_for(topic=f"{P}/device/tv-1/state")

        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "c-1", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}})
        reply = phone.wait_for(topic=f"{P}/intent/c-1/result", since=mark)
        plan = f"{P}/plan/{reply.json['plan_id']}"
        end = phone.wait_for(lambda m: m.json["state"] in ("compensated", "failed"), topic=plan,
                             since=mark, timeout=15, check=hub.check_alive)
        self.assertEqual(end.json["state"], "compensated", end)
        self.assertIn("blind-1", end.json["reason"])
        states = [m.json["state"] for m in phone.messages(plan, since=mark)]
        self.assertIn("compensating", states)
        steps = {s["device"]: s["state"] for s in end.json["steps"]}
        self.assertEqual(steps, {"lamp-1": "compensated", "blind-1": "failed",
                                 "tv-1": "compensated"})

        # The blind got the command three times (1 + 2 retries); the others
        # got theirs and then their previous values back.
        cmds = {}
        for c in sim.commands():
            cmds.setdefault(c["device"], []).append(c["payload"])
        self.assertEqual(len(cmds["blind-1"]), 3, cmds)
        self.assertEqual([(c.get("on"), c.get("brightness")) for c in cmds["lamp-1"]],
                         [(True, 30), (True, 80)])
        self.assertEqual([c["on"] for c in cmds["tv-1"]], [True, False])
        last = {m.topic.split("/")[3]: m.json for m in phone.messages(f"{P}/device/+/state",
                                                                      since=mark)}
        self.assertEqual(last["lamp-1"]["brightness"], 80)
        self.assertFalse(last["tv-1"]["on"])

        r = harness.run_ctl(hub.data_dir, "episodes", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        ep = json.loads(r.stdout)[0]
        self.assertEqual(ep["outcome"], "compensated")
        self.assertIn("blind-1", ep["reason"])


if __name__ == "__main__":
    harness.main()
