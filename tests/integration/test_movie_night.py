"""The walking skeleton's end-to-end slice (issue 2, DESIGN.md sections 4-6).

A scene.movie_night intent for the living room of tests/sim/homes/movie.json
(a dimmable lamp on at 80 %, a blind open at 100, a TV off; and a bedroom
lamp that must not be touched) goes through a real mosquitto: exactly three
set commands reach exactly those three devices, the plan is confirmed from
the devices' state and reaches "completed", the reply arrives on the result
topic (or the MQTT v5 response topic with its correlation data), and the
episode is in the store, also after hearthd restarts.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
LIVING = {"lamp-1", "blind-1", "tv-1"}


class MovieNightTest(harness.TestCase):

    def setUp(self):
        self.broker_ = self.broker()
        self.phone = self.client(self.broker_)
        self.phone.subscribe(f"{P}/#")
        self.hub_ = self.hub(self.broker_)
        self.hub_.wait_online(self.phone)
        self.sim_ = self.sim(self.broker_, "movie.json")
        # The hub knows the devices once their state is in: wait for the
        # bedroom lamp's retained state (announced last) to have been seen.
        self.phone.wait_for(topic=f"{P}/device/bedlamp-1/state", what="the sim's last state")

    def run_intent(self, intent, **pub):
        mark = self.phone.mark()
        self.phone.publish(f"{P}/intent", intent, **pub)
        return mark

    def wait_plan(self, plan_id, state, since=0, timeout=10):
        return self.phone.wait_for(lambda m: m.json["state"] == state,
                                   topic=f"{P}/plan/{plan_id}", since=since, timeout=timeout,
                                   what=f"plan {plan_id} {state}")

    def test_movie_night_commands_confirm_and_episode(self):
        mark = self.run_intent({"id": "i-42", "intent": "scene.movie_night",
                                "slots": {"room": "living"}, "source": "remote-1",
                                "user": "alice"})
        reply = self.phone.wait_for(topic=f"{P}/intent/i-42/result", since=mark,
                                    what="the reply on the result topic")
        self.assertNotIn("error", reply.json, reply)
        self.assertEqual(reply.json["id"], "i-42")
        self.assertEqual(reply.json["intent"], "scene.movie_night")
        self.assertEqual(reply.json["slots"], {"room": "living"})
        self.assertEqual(reply.json["state"], "running")
        self.assertTrue(reply.json["rationale"], reply)
        plan_id = reply.json["plan_id"]
        self.assertEqual({s["device"] for s in reply.json["steps"]}, LIVING)
        for s in reply.json["steps"]:
            self.assertIn("capability", s)
            self.assertIn("args", s)
            self.assertIn("state", s)

        done = self.wait_plan(plan_id, "completed", since=mark)
        self.assertTrue(all(s["state"] == "confirmed" for s in done.json["steps"]), done)

        # Exactly three commands, to exactly those devices, with the right values.
        sets = self.phone.messages(f"{P}/device/+/set", since=mark)
        by_dev = {m.topic.split("/")[3]: m.json for m in sets}
        self.assertEqual(len(sets), 3, sets)
        self.assertEqual(set(by_dev), LIVING, sets)
        self.assertTrue(by_dev["lamp-1"]["on"])
        self.assertLessEqual(by_dev["lamp-1"]["brightness"], 30)
        self.assertEqual(by_dev["blind-1"]["position"], 0)
        self.assertTrue(by_dev["tv-1"]["on"])
        for body in by_dev.values():
            self.assertEqual(body["plan_id"], plan_id)
            self.assertEqual(body["intent_id"], "i-42")
            self.assertIn("step", body)
        # The simulated devices received them (and only them).
        got = [c["device"] for c in self.sim_.commands()]
        self.assertEqual(sorted(got), sorted(LIVING))

        # The plan topic carried every stage, ending in completed.
        states = [m.json["state"] for m in self.phone.messages(f"{P}/plan/{plan_id}", since=mark)]
        self.assertEqual(states[0], "running")
        self.assertEqual(states[-1], "completed")

        # hearthctl shows the episode, with the daemon running...
        ep = self.episode(plan_id)
        self.assertEqual(ep["outcome"], "completed")
        self.assertEqual(ep["intent_id"], "i-42")
        self.assertEqual(ep["slots"], {"room": "living"})
        self.assertEqual(ep["user"], "alice")
        self.assertGreaterEqual(ep["latency_ms"]["total"], 0)
        human = harness.run_ctl(self.hub_.data_dir, "episodes")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("scene.movie_night", human.stdout)
        self.assertIn("completed", human.stdout)

        # ...after a restart of hearthd...
        self.assertEqual(self.hub_.stop(), 0)
        off = harness.run_ctl(self.hub_.data_dir, "episodes", "--json")
        self.assertEqual(off.returncode, 0, off.stderr)
        self.assertIn(plan_id, {e["id"] for e in json.loads(off.stdout)})
        self.hub_.start()
        self.hub_.wait_online(self.phone, timeout=15)
        self.assertEqual(self.episode(plan_id)["outcome"], "completed")

    def episode(self, plan_id):
        r = harness.run_ctl(self.hub_.data_dir, "episodes", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        eps = {e["id"]: e for e in json.loads(r.stdout)}
        self.assertIn(plan_id, eps, r.stdout)
        return eps[plan_id]

    def test_already_holding_light_is_left_alone(self):
        # The lamp is already on at 20 %: at or below 30 %, so no command for it.
        self.phone.publish(f"hearth-sim/home/lamp-1/state", {"on": True, "brightness": 20})
        self.phone.wait_for(lambda m: m.json["brightness"] == 20,
                            topic=f"{P}/device/lamp-1/state")
        mark = self.run_intent({"id": "i-dim", "intent": "scene.movie_night",
                                "slots": {"room": "living"}})
        reply = self.phone.wait_for(topic=f"{P}/intent/i-dim/result", since=mark)
        steps = {s["device"]: s for s in reply.json["steps"]}
        self.assertEqual(steps["lamp-1"]["state"], "skipped", reply)
        self.assertIn("left alone", reply.json["rationale"])
        self.wait_plan(reply.json["plan_id"], "completed", since=mark)
        sets = {m.topic.split("/")[3] for m in self.phone.messages(f"{P}/device/+/set", since=mark)}
        self.assertEqual(sets, {"blind-1", "tv-1"})

    def test_every_step_holds_completes_at_once(self):
        mark = self.run_intent({"id": "i-a", "intent": "scene.movie_night",
                                "slots": {"room": "living"}})
        first = self.phone.wait_for(topic=f"{P}/intent/i-a/result", since=mark)
        self.wait_plan(first.json["plan_id"], "completed", since=mark)
        mark = self.run_intent({"id": "i-b", "intent": "scene.movie_night",
                                "slots": {"room": "Living"}})
        reply = self.phone.wait_for(topic=f"{P}/intent/i-b/result", since=mark)
        self.assertEqual(reply.json["state"], "completed", reply)
        self.assertTrue(all(s["state"] == "skipped" for s in reply.json["steps"]), reply)
        self.assertEqual(self.phone.messages(f"{P}/device/+/set", since=mark), [])

    def test_v5_response_topic_and_preview(self):
        self.phone.subscribe("phone/replies/#")
        mark = self.run_intent({"intent": "scene.movie_night", "slots": {"room": "living"},
                                "preview": True},
                               response_topic="phone/replies/1", correlation=b"\x01corr-7")
        reply = self.phone.wait_for(topic="phone/replies/1", since=mark,
                                    what="the reply on the v5 response topic")
        self.assertEqual(reply.correlation, b"\x01corr-7")
        self.assertEqual(reply.json["state"], "previewed")
        self.assertTrue(reply.json["id"].startswith("i-"), "a generated intent id")
        self.assertEqual(len(reply.json["steps"]), 3)
        self.assertEqual(self.phone.messages(f"{P}/device/+/set", since=mark), [],
                         "a preview dispatches nothing")
        self.assertEqual(self.phone.messages(f"{P}/intent/+/result", since=mark), [],
                         "with a response topic the result topic is not used")

    def test_refusals_answer_on_result_and_error(self):
        cases = [
            ({"id": "r1", "intent": "scene.nope"}, "no_match"),
            ({"id": "r2", "intent": "scene.movie_night"}, "bad_request"),
            ({"id": "r3", "intent": "scene.movie_night", "slots": {"room": "garage"}},
             "unknown_room"),
            ({"id": "r4", "intent": 7}, "bad_request"),
        ]
        for intent, code in cases:
            mark = self.run_intent(intent)
            r = self.phone.wait_for(topic=f"{P}/intent/{intent['id']}/result", since=mark)
            self.assertEqual(r.json["error"], code, r)
            self.assertTrue(r.json["detail"], r)
            e = self.phone.wait_for(topic=f"{P}/error", since=mark)
            self.assertEqual(e.json["error"], code, e)


if __name__ == "__main__":
    harness.main()
