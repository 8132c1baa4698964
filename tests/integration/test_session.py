"""Connection life (issue 2, DESIGN.md section 2 and 5).

- Intents published (QoS 1) while hearthd is down are delivered when it
  comes back: it uses a fixed client id, clean start off and a session
  expiry, so the broker keeps its subscriptions and queues for it.
- When the broker goes away and comes back (losing every session), hearthd
  reconnects with backoff, subscribes again and publishes "online" again.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"


class SessionTest(harness.TestCase):

    def test_intent_published_while_hub_down_runs_on_return(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker)
        hub.wait_online(phone)
        self.sim(broker, "movie.json")
        phone.wait_for(topic=f"{P}/device/bedlamp-1/state")
        self.assertEqual(hub.stop(), 0)

        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "while-down", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}}, qos=1)
        hub.start()
        reply = phone.wait_for(topic=f"{P}/intent/while-down/result", since=mark, timeout=15,
                               check=hub.check_alive, what="the queued intent's reply")
        self.assertNotIn("error", reply.json, reply)
        phone.wait_for(lambda m: m.json["state"] == "completed",
                       topic=f"{P}/plan/{reply.json['plan_id']}", since=mark)

    def test_broker_restart_reconnects_and_resubscribes(self):
        broker = self.broker()
        hub = self.hub(broker)
        phone = self.client(broker)
        phone.subscribe(f"{P}/status")
        hub.wait_online(phone)
        phone.close()

        broker.restart()  # no persistence: every session is gone
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        phone.wait_for(lambda m: m.json["state"] == "online", topic=f"{P}/status", timeout=20,
                       check=hub.check_alive, what="hearthd online again after the restart")
        self.sim(broker, "movie.json")
        phone.wait_for(topic=f"{P}/device/bedlamp-1/state")
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "after", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}})
        reply = phone.wait_for(topic=f"{P}/intent/after/result", since=mark, timeout=10,
                               what="a reply: hearthd subscribed again")
        self.assertEqual(reply.json["state"], "running", reply)


if __name__ == "__main__":
    harness.main()
