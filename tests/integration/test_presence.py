"""Hub presence (DESIGN.md section 4, "Hub presence"; section 6).

hearthd publishes hearth/<home>/status retained {"state":"online","version",
"ts"} when it connects, and registers {"state":"offline",...} retained as its
last will: a phone that subscribes at any moment learns whether the hub is
up, whether it stopped cleanly (SIGTERM: offline, exit 0) or died (kill -9:
the broker publishes the will).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

STATUS = "hearth/home/status"


class PresenceTest(harness.TestCase):

    def retained_status(self, broker):
        """What a client that subscribes now gets: the retained status."""
        late = self.client(broker)
        late.subscribe(STATUS)
        m = late.wait_for(topic=STATUS, timeout=5, what=f"retained {STATUS}")
        self.assertTrue(m.retain, f"{STATUS} must be retained: {m}")
        late.close()
        return m

    def assert_status(self, m, state):
        self.assertIsInstance(m.json, dict, f"{STATUS} payload is not a JSON object: {m}")
        self.assertEqual(m.json.get("state"), state, m)

    def test_online_then_sigterm_offline(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(STATUS)
        hub = self.hub(broker)

        m = hub.wait_online(phone)
        self.assert_status(m, "online")
        version = m.json.get("version")
        self.assertIsInstance(version, str, f"status needs a \"version\" string: {m}")
        self.assertTrue(version, f"status \"version\" is empty: {m}")
        ts = m.json.get("ts")
        self.assertTrue(isinstance(ts, (int, float)) and not isinstance(ts, bool) and ts == int(ts),
                        f"status needs \"ts\", integer ms since the epoch: {m}")
        self.assertLessEqual(abs(ts - harness.now_ms()), 60_000,
                             f"status \"ts\" {ts} is not milliseconds since the epoch, now")
        retained = self.retained_status(broker)
        self.assert_status(retained, "online")

        # A clean stop publishes a fresh offline status, not just the last
        # will (which was written at connect time, so its ts is older).
        time.sleep(0.3)
        mark = phone.mark()
        stop_ms = harness.now_ms()
        code = hub.stop()
        self.assertEqual(code, 0, f"hearthd exit code on SIGTERM\n{harness.tail(hub.log())}")
        m = phone.wait_for(lambda m: m.json["state"] == "offline", topic=STATUS, since=mark,
                           timeout=5, what=f"{STATUS} offline after SIGTERM")
        self.assert_status(m, "offline")
        self.assertIsInstance(m.json.get("version"), str, f"offline status needs \"version\": {m}")
        self.assertGreaterEqual(m.json.get("ts", 0), stop_ms - 50,
                                f"offline after SIGTERM must be published at stop time "
                                f"(ts >= {stop_ms}), not be the last will: {m}")
        retained = self.retained_status(broker)
        self.assert_status(retained, "offline")

    def test_kill9_last_will(self):
        broker = self.broker()
        phone = self.client(broker)
        phone.subscribe(STATUS)
        hub = self.hub(broker)
        hub.wait_online(phone)
        self.assertEqual(hub.stop(), 0, f"hearthd exit code on SIGTERM\n{harness.tail(hub.log())}")

        # Again, on the data dir it left behind; then it dies without a word.
        hub.start()
        hub.wait_online(phone)
        self.assert_status(self.retained_status(broker), "online")
        mark = phone.mark()
        t0 = time.monotonic()
        hub.kill9()
        m = phone.wait_for(lambda m: m.json["state"] == "offline", topic=STATUS, since=mark,
                           timeout=10, what=f"{STATUS} offline (last will) after kill -9")
        self.assertLess(time.monotonic() - t0, 10)
        self.assert_status(m, "offline")
        self.assert_status(self.retained_status(broker), "offline")


if __name__ == "__main__":
    harness.main()
