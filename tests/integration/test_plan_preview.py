"""Previewing a plan from words (issue 5, items 3 and 9).

`hearthctl plan "movie night in the bedroom"` on the demo home prints the
plan hearthd would run, with its rationale, and sends nothing; the same
words as an MQTT intent's "text" are understood; words no recipe covers get
no_match, on the CLI and on the wire.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"


class PlanPreviewTest(harness.TestCase):

    def test_plan_from_words(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker)
        hub.wait_online(phone)
        self.sim(broker, "demo.json")
        phone.wait_for(topic=f"{P}/device/kitchen-1/state")

        mark = phone.mark()
        r = harness.run_ctl(hub.data_dir, "plan", "movie night in the bedroom")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("scene.movie_night", out)
        self.assertIn("room=bedroom", out)
        for dev in ("bedlamp-1", "bedblind-1", "bedtv-1"):
            self.assertIn(dev, out)
        self.assertIn("why: Movie night in bedroom", out)
        self.assertIn("nothing sent", out)
        self.assertEqual(phone.messages(f"{P}/device/+/set", since=mark), [],
                         "a preview sends no command")

        self.assertIn("score: ", out)

        # A step that needs one light: each light of the room is a candidate,
        # scored and ranked; the rationale says why the winner won.
        r = harness.run_ctl(hub.data_dir, "plan", "reading light in the living room")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alternatives:", r.stdout)
        self.assertIn("Chosen over Reading light with", r.stdout)
        r = harness.run_ctl(hub.data_dir, "plan", "reading light in the living room", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        plan = json.loads(r.stdout)
        alts = plan["alternatives"]
        self.assertEqual(sorted(d for a in alts for d in a["devices"]), ["ceiling-1", "lamp-1"])
        self.assertEqual([a["rank"] for a in alts], [1, 2])
        self.assertTrue(alts[0]["chosen"])
        self.assertGreaterEqual(alts[0]["score"]["total"], alts[1]["score"]["total"])
        self.assertEqual(plan["score"], alts[0]["score"])
        self.assertEqual([s["device"] for s in plan["steps"]], alts[0]["devices"])
        self.assertEqual(plan["score"]["weights"],
                         {"latency": 1, "friction": 1, "comfort": 1, "privacy": 1, "energy": 0.5})

        r = harness.run_ctl(hub.data_dir, "plan", "sing", "me", "a", "song")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no_match", r.stderr)

        # The same words as an intent's text, over MQTT, run the plan.
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "t-1", "text": "Movie night in the bedroom, please!"})
        reply = phone.wait_for(topic=f"{P}/intent/t-1/result", since=mark)
        self.assertEqual(reply.json["intent"], "scene.movie_night", reply)
        self.assertEqual(reply.json["slots"], {"room": "bedroom"})
        phone.wait_for(lambda m: m.json["state"] == "completed",
                       topic=f"{P}/plan/{reply.json['plan_id']}", since=mark, timeout=15)


if __name__ == "__main__":
    harness.main()
