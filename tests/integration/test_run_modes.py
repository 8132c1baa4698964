"""Reservations and run modes with hearth-sim and a real broker (issue 6 item 3).

The test recipe folder (tests/integration/recipes) has scene.movie_night
(run mode single, the default), lights.level (restart) and covers.close
(queued, max 2). The living room's devices answer in 150 ms, so a second
intent published right after the first finds it running. What a user sees:

1. single: the second movie night is refused with "already_running" (reply
   and <p>/error, the detail names the running plan); nothing is sent for it.
2. restart: the second lights.level replaces the first: the first ends with
   the reason "replaced by plan <second> (run mode restart)" (its devices
   handed over), the second completes and the lamp ends at its level.
3. queued: the second covers.close is "queued" and starts when the first
   ended; a third (beyond max 2) is refused with "queue_full". The blind
   gets the commands one after the other, never overlapping.
4. another recipe that needs a reserved device waits for it: covers.close
   after a movie night waits for the blind ("waiting for blind-1, in use by
   plan ...") and runs once the movie night ended.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
HERE = os.path.dirname(os.path.abspath(__file__))
HOME = {"devices": [
    {"id": "lamp-1", "room": "living", "kind": "light",
     "capabilities": ["light.on_off", "light.brightness"], "state": {"on": True, "brightness": 80},
     "latency_ms": 150},
    {"id": "blind-1", "room": "living", "kind": "blind", "capabilities": ["cover.position"],
     "state": {"position": 100}, "latency_ms": 150},
    {"id": "tv-1", "room": "living", "kind": "tv", "capabilities": ["media.power"],
     "state": {"on": False}, "latency_ms": 150},
]}
TERMINAL = ("completed", "compensated", "failed")


class RunModesTest(harness.TestCase):

    def setUp(self):
        broker = self.broker()
        self.phone = self.client(broker)
        self.phone.subscribe(f"{P}/#")
        self.hub_ = self.hub(broker, args=["--recipes", os.path.join(HERE, "recipes")])
        self.hub_.wait_online(self.phone)
        home = os.path.join(harness.workdir("home"), "living.json")
        with open(home, "w") as f:
            json.dump(HOME, f)
        self.sim_ = self.sim(broker, home)
        self.phone.wait_for(topic=f"{P}/device/tv-1/state")

    def send(self, intent_id, intent, **slots):
        self.phone.publish(f"{P}/intent", {"id": intent_id, "intent": intent,
                                           "slots": dict(slots, room="living")})

    def reply(self, intent_id, since):
        return self.phone.wait_for(topic=f"{P}/intent/{intent_id}/result", since=since).json

    def end(self, plan_id, since):
        return self.phone.wait_for(lambda m: m.json["state"] in TERMINAL,
                                   topic=f"{P}/plan/{plan_id}", since=since, timeout=10,
                                   check=self.hub_.check_alive).json

    def test_single_refuses_a_second_run(self):
        mark = self.phone.mark()
        self.send("s-1", "scene.movie_night")
        self.send("s-2", "scene.movie_night")
        first, second = self.reply("s-1", mark), self.reply("s-2", mark)
        self.assertEqual(first["state"], "running")
        self.assertEqual(second["error"], "already_running", second)
        self.assertEqual(second["detail"], f"scene.movie_night is already running (plan "
                                           f"{first['plan_id']}); its run mode is single")
        err = self.phone.wait_for(lambda m: m.json.get("error") == "already_running",
                                  topic=f"{P}/error", since=mark)
        self.assertEqual(err.json["topic"], f"{P}/intent")
        self.assertEqual(self.end(first["plan_id"], mark)["state"], "completed")
        self.assertEqual({c["payload"]["plan_id"] for c in self.sim_.commands()},
                         {first["plan_id"]})

    def test_restart_replaces_the_running_plan(self):
        mark = self.phone.mark()
        self.send("r-1", "lights.level", level=30)
        self.send("r-2", "lights.level", level=60)
        first, second = self.reply("r-1", mark), self.reply("r-2", mark)
        self.assertEqual(first["state"], "running")
        self.assertEqual(second["state"], "running")
        self.assertIn(f"It replaces plan {first['plan_id']}", second["rationale"])
        old = self.end(first["plan_id"], mark)
        self.assertEqual(old["state"], "compensated", old)
        self.assertEqual(old["reason"], f"replaced by plan {second['plan_id']} (run mode restart)")
        self.assertTrue(all(s["note"] == f"handed over to plan {second['plan_id']}"
                            for s in old["steps"]), old["steps"])
        new = self.end(second["plan_id"], mark)
        self.assertEqual(new["state"], "completed", new)
        last = self.phone.messages(f"{P}/device/lamp-1/state", since=mark)[-1].json
        self.assertEqual(last["brightness"], 60)

    def test_queued_runs_one_after_the_other(self):
        mark = self.phone.mark()
        self.send("q-1", "covers.close", position=0)
        self.send("q-2", "covers.close", position=50)
        self.send("q-3", "covers.close", position=20)
        first, second, third = (self.reply(i, mark) for i in ("q-1", "q-2", "q-3"))
        self.assertEqual(first["state"], "running")
        self.assertEqual(second["state"], "queued", second)
        self.assertEqual([s["state"] for s in second["steps"]], ["pending"])
        self.assertEqual(third["error"], "queue_full", third)
        self.assertEqual(self.end(first["plan_id"], mark)["state"], "completed")
        self.assertEqual(self.end(second["plan_id"], mark)["state"], "completed")
        states = [m.json["state"] for m in
                  self.phone.messages(f"{P}/plan/{second['plan_id']}", since=mark)]
        self.assertEqual(states[0], "queued")
        self.assertIn("running", states)
        cmds = [(c["payload"]["plan_id"], c["payload"]["position"], c["ts"])
                for c in self.sim_.commands()]
        self.assertEqual([c[:2] for c in cmds],
                         [(first["plan_id"], 0), (second["plan_id"], 50)])
        # the second was sent only after the blind reported the first
        reached = [ev["ts"] for ev in self.sim_.events("state")
                   if ev["device"] == "blind-1" and ev["state"]["position"] == 0]
        self.assertTrue(reached and cmds[1][2] >= reached[0], (cmds, reached))

    def test_other_recipe_waits_for_a_reserved_device(self):
        mark = self.phone.mark()
        self.send("o-1", "scene.movie_night")
        self.send("o-2", "covers.close", position=40)
        movie, covers = self.reply("o-1", mark), self.reply("o-2", mark)
        self.assertEqual(covers["state"], "running")
        self.assertEqual(covers["steps"][0]["state"], "pending")
        self.assertEqual(covers["steps"][0]["note"],
                         f"waiting for blind-1, in use by plan {movie['plan_id']}")
        self.assertEqual(self.end(movie["plan_id"], mark)["state"], "completed")
        self.assertEqual(self.end(covers["plan_id"], mark)["state"], "completed")
        blind = [c["payload"] for c in self.sim_.commands() if c["device"] == "blind-1"]
        self.assertEqual([(b["plan_id"], b["position"]) for b in blind],
                         [(movie["plan_id"], 0), (covers["plan_id"], 40)])


if __name__ == "__main__":
    harness.main()
