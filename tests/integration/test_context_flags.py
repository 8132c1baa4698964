"""Derived flags and the privacy guard on a running hub (issue 4, items 3-5).

Motion in the hallway of the demo home makes the hallway occupied and
someone home; `hearthctl health` shows the flags, the privacy guard's
counters and the drift sentinel. A bad flag definition in the configuration
stops hearthd with the path of the field in its log.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"


class ContextFlagsTest(harness.TestCase):

    def health(self, hub):
        r = harness.run_ctl(hub.data_dir, "health", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["context"]

    def wait_flag(self, hub, name, value, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flags = self.health(hub)["flags"]["flags"]
            if flags.get(name) == value:
                return flags
            time.sleep(0.1)
        self.fail(f"flag {name} never became {value}: {flags}")

    def test_motion_makes_someone_home(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        config = os.path.join(harness.workdir("cfg"), "hearth.json")
        with open(config, "w") as f:
            json.dump({"flags": [{"name": "tv_on", "when": {"device": "tv-1",
                                                             "property": "on", "is": True}}]}, f)
        hub = self.hub(broker, config=config)
        hub.wait_online(phone)
        self.sim(broker, "demo.json")
        phone.wait_for(topic=f"{P}/device/kitchen-1/state")

        flags = self.wait_flag(hub, "room.hallway.occupied", False)
        self.assertFalse(flags["someone_home"])
        self.assertTrue(flags["away"])
        self.assertFalse(flags["tv_on"])
        phone.publish("hearth-sim/home/motion-1/state", {"motion": True})
        flags = self.wait_flag(hub, "room.hallway.occupied", True)
        self.assertTrue(flags["someone_home"])
        self.assertFalse(flags["away"])

        # A user-defined flag follows a device property.
        phone.publish("hearth-sim/home/tv-1/state", {"on": True})
        self.wait_flag(hub, "tv_on", True)

        ctx = self.health(hub)
        self.assertIn("planner", ctx["privacy"]["allowed"])
        self.assertEqual(ctx["privacy"]["allowed"]["export"], [])
        self.assertIn("drifting", ctx["drift"])

    def test_bad_flag_definition_stops_hearthd(self):
        config = os.path.join(harness.workdir("cfg"), "hearth.json")
        with open(config, "w") as f:
            json.dump({"flags": [{"name": "a", "when": {"flag": "b", "is": True}},
                                 {"name": "b", "when": {"flag": "a", "is": True}}]}, f)
        broker = self.broker()
        hub = self.hub(broker, config=config)
        deadline = time.monotonic() + 10
        while hub.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(hub.alive(), "a flag cycle must stop hearthd")
        self.assertIn("depends on itself", harness.read_text(hub.log_path))


if __name__ == "__main__":
    harness.main()
