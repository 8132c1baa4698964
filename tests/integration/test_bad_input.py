"""Bad input on every inbound topic (DESIGN.md section 5, issue 2).

Malformed JSON, wrong types, oversized payloads and hostile ids on the
intent, device meta, state and availability topics each get a clear error on
hearth/<home>/error, leave the daemon running, and leave what the store and
the registry hold unchanged.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
BIG = b'{"pad":"' + b"x" * 70000 + b'"}'

CASES = [
    # (topic, payload, expected error code)
    (f"{P}/intent", b"{not json", "bad_json"),
    (f"{P}/intent", b'{"intent":"scene.movie_night"} trailing', "bad_json"),
    (f"{P}/intent", b"[1,2,3]", "bad_request"),
    (f"{P}/intent", b"", "bad_request"),
    (f"{P}/intent", BIG, "too_large"),
    (f"{P}/intent", b'{"id":"a/b","intent":"scene.movie_night"}', "bad_request"),
    (f"{P}/intent", b'{"id":"#","intent":"scene.movie_night"}', "bad_request"),
    (f"{P}/intent", json.dumps({"id": "x" * 65, "intent": "x"}).encode(), "bad_request"),
    (f"{P}/intent", b'{"id":"t1","intent":["scene.movie_night"]}', "bad_request"),
    (f"{P}/intent", b'{"id":"t2","intent":"scene.movie_night","slots":"living"}', "bad_request"),
    (f"{P}/intent", b'{"id":"t3","intent":"scene.movie_night","slots":{"room":5}}', "bad_request"),
    (f"{P}/intent", b'{"id":"t4","intent":"scene.movie_night","preview":"yes"}', "bad_request"),
    (f"{P}/intent", b"[" * 5000, "bad_json"),
    (f"{P}/intent", b'{"id":"t5","intent":"scene.movie_night","slots":{"room":"living"},'
                    b'"user":"' + b"u" * 100 + b'"}', "bad_request"),
    (f"{P}/device/lamp-1/meta", b"{oops", "bad_json"),
    (f"{P}/device/lamp-1/meta", b'{"room":"living","capabilities":"light.on_off"}',
     "bad_request"),
    (f"{P}/device/lamp-1/meta", b'{"room":7,"capabilities":[]}', "bad_request"),
    (f"{P}/device/lamp-1/meta", b'{"room":"x","capabilities":[],"transport":"coap"}',
     "bad_request"),
    (f"{P}/device/lamp-1/meta", BIG, "too_large"),
    (f"{P}/device/bad%20id/meta", b'{"room":"living","capabilities":[]}', "bad_request"),
    (f"{P}/device/" + "d" * 65 + "/state", b'{"on":true}', "bad_request"),
    (f"{P}/device/lamp-1/state", b"\x00\xff\xfe", "bad_json"),
    (f"{P}/device/lamp-1/state", b'{"brightness":"high"}', "bad_request"),
    (f"{P}/device/lamp-1/state", b'{"on":1}', "bad_request"),
    (f"{P}/device/lamp-1/state", b'{"brightness":500}', "bad_request"),
    (f"{P}/device/lamp-1/state", b'"on"', "bad_request"),
    (f"{P}/device/lamp-1/availability", b"maybe", "bad_request"),
    (f"{P}/device/lamp-1/availability", b'{"state":7}', "bad_request"),
]


class BadInputTest(harness.TestCase):

    def snapshot(self, hub):
        out = {}
        for cmd in ("devices", "episodes"):
            r = harness.run_ctl(hub.data_dir, cmd, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            items = json.loads(r.stdout)
            for d in items:
                d.pop("last_seen", None)  # refreshed by any valid message
            out[cmd] = items
        return out

    def test_every_inbound_topic(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(f"{P}/#")
        hub = self.hub(broker)
        hub.wait_online(phone)
        sim = self.sim(broker, "movie.json")
        phone.wait_for(topic=f"{P}/device/bedlamp-1/state")
        # One real plan, so the store holds an episode to compare.
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "ok-1", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}})
        reply = phone.wait_for(topic=f"{P}/intent/ok-1/result", since=mark)
        phone.wait_for(lambda m: m.json["state"] == "completed",
                       topic=f"{P}/plan/{reply.json['plan_id']}", since=mark)
        before = self.snapshot(hub)
        self.assertEqual(len(before["episodes"]), 1)

        for topic, payload, code in CASES:
            with self.subTest(topic=topic, payload=payload[:60], code=code):
                mark = phone.mark()
                phone.publish(topic, payload)
                err = phone.wait_for(topic=f"{P}/error", since=mark, timeout=5,
                                     check=hub.check_alive,
                                     what=f"an error for {topic} {payload[:40]!r}")
                self.assertEqual(err.json["error"], code, err)
                self.assertTrue(err.json.get("detail"), err)
                self.assertIsInstance(err.json.get("ts"), (int, float), err)
                self.assertTrue(err.json.get("topic", "").startswith(P), err)
                self.assertEqual(phone.messages(f"{P}/device/+/set", since=mark), [],
                                 "bad input must not drive devices")

        self.assertTrue(hub.alive(), "hearthd died on bad input")
        self.assertEqual(self.snapshot(hub), before, "bad input changed stored state")
        # And it still works.
        mark = phone.mark()
        phone.publish(f"{P}/intent", {"id": "ok-2", "intent": "scene.movie_night",
                                      "slots": {"room": "living"}, "preview": True})
        r = phone.wait_for(topic=f"{P}/intent/ok-2/result", since=mark)
        self.assertEqual(r.json["state"], "previewed")
        sim.check_alive()


if __name__ == "__main__":
    harness.main()
