"""Zigbee2MQTT and Home Assistant discovery devices on a real broker (issue 4).

The fixtures of tests/fixtures/z2m and tests/fixtures/ha (payloads in the
documented formats of those projects) are published retained on their real
topics, as Zigbee2MQTT and Tasmota/ESPHome/Shelly firmware would leave them,
before hearthd starts. Then:
- `hearthctl devices --json` lists the z2m.<ieee> and ha.<unique_id>
  devices with the right capabilities and rooms (the device file first,
  then "<room>/<name>" friendly names, then HA's suggested area);
- a movie night in the living room commands the Zigbee2MQTT lamp and blind
  on zigbee2mqtt/<name>/set with Zigbee2MQTT values and the Shelly cover
  (HA discovery) on its own set-position topic; the test plays the devices
  (their state back on their own state topics, in their own values) and the
  plan completes;
- bad payloads on those topics are answered on hearth/home/error, naming the
  ecosystem topic, and hearthd keeps running.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
FIX = os.path.join(harness.SOURCE_DIR, "tests", "fixtures")

LAMP = "z2m.0x000b57fffec6a5b2"
BLIND = "z2m.0x680ae2fffe7b8c9d"
AQARA = "z2m.0x00158d00045f6e7a"
SHUTTER = "ha.shelly25-C45BBE-cover"
CEILING = "ha.esp-living-ceiling"
LOCK = "ha.lock-frontdoor-3a4b5c"


def load(*parts):
    with open(os.path.join(FIX, *parts)) as f:
        return json.load(f)


class EcosystemTest(harness.TestCase):

    def setUp(self):
        self.broker_ = self.broker()
        self.dev = self.client(self.broker_)
        self.dev.subscribe(f"{P}/#")
        self.dev.subscribe("zigbee2mqtt/#")
        self.dev.subscribe("shellies/#")
        self.dev.subscribe("esp-living/#")
        # What the bridge and the devices left retained on the broker.
        self.dev.publish("zigbee2mqtt/bridge/devices", load("z2m", "bridge_devices.json"),
                         retain=True)
        for name, state in load("z2m", "states.json").items():
            self.dev.publish(f"zigbee2mqtt/{name}", state, retain=True)
            self.dev.publish(f"zigbee2mqtt/{name}/availability", {"state": "online"},
                             retain=True)
        for topic, cfg in load("ha", "discovery.json").items():
            self.dev.publish(topic, cfg, retain=True)
        for topic, payload in load("ha", "states.json").items():
            self.dev.publish(topic, payload, retain=True)

        d = harness.workdir("eco")
        devices_file = os.path.join(d, "devices.json")
        with open(devices_file, "w") as f:
            json.dump({AQARA: {"room": "bedroom"}, LOCK: {"room": "hall"}}, f)
        config = os.path.join(d, "hearth.json")
        with open(config, "w") as f:
            json.dump({"devices_file": devices_file,
                       "zigbee2mqtt": {"base_topic": "zigbee2mqtt"},
                       "homeassistant": {"prefix": "homeassistant"}}, f)
        self.hub_ = self.hub(self.broker_, config=config)
        self.hub_.wait_online(self.dev)

    def devices(self, want_ids, timeout=15):
        """hearthctl devices --json, once it lists every id of want_ids."""
        deadline = time.monotonic() + timeout
        while True:
            r = harness.run_ctl(self.hub_.data_dir, "devices", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            devs = {d["id"]: d for d in json.loads(r.stdout)}
            if set(want_ids) <= set(devs) or time.monotonic() > deadline:
                missing = set(want_ids) - set(devs)
                self.assertFalse(missing, f"not listed: {missing}; listed: {sorted(devs)}")
                return devs
            self.hub_.check_alive()
            time.sleep(0.1)

    def test_devices_listed_with_capabilities_and_rooms(self):
        devs = self.devices([LAMP, BLIND, AQARA, SHUTTER, CEILING, LOCK])
        lamp = devs[LAMP]
        self.assertEqual(lamp["name"], "living/sofa lamp")
        self.assertEqual(lamp["room"], "living")
        self.assertEqual(lamp["transport"], "z2m")
        self.assertEqual(lamp["address"], {"friendly_name": "living/sofa lamp"})
        self.assertEqual(set(lamp["capabilities"]),
                         {"light.on_off", "light.brightness", "light.color_temp"})
        self.assertEqual(devs[BLIND]["capabilities"], ["cover.position"])
        self.assertEqual(devs[AQARA]["room"], "bedroom")  # the device file
        self.assertEqual(devs[AQARA]["capabilities"], ["sensor.temperature"])
        shutter = devs[SHUTTER]
        self.assertEqual(shutter["transport"], "ha")
        self.assertEqual(shutter["room"], "Living")  # dev.sa
        self.assertEqual(shutter["capabilities"], ["cover.position"])
        self.assertEqual(devs[CEILING]["room"], "Kitchen")
        self.assertEqual(set(devs[CEILING]["capabilities"]), {"light.on_off", "light.brightness"})
        self.assertEqual(devs[LOCK]["room"], "hall")  # the device file
        self.assertEqual(devs[LOCK]["capabilities"], ["lock.lock"])
        # Zigbee2MQTT's own HA config is not a second copy of the lamp.
        self.assertNotIn("ha.0x000b57fffec6a5b2_light_zigbee2mqtt", devs)
        self.assertFalse([i for i in devs if "0x00124b0024c1b2a3" in i], "the coordinator")
        # State in hearth terms, from the retained state topics.
        self.wait_state(LAMP, {"on": True, "brightness": 80})
        self.wait_state(SHUTTER, {"position": 100})
        human = harness.run_ctl(self.hub_.data_dir, "devices")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn(LAMP, human.stdout)
        self.assertIn(SHUTTER, human.stdout)

    def wait_state(self, dev_id, want, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            devs = self.devices([dev_id])
            st = devs[dev_id].get("state") or {}
            if all(st.get(k) == v for k, v in want.items()):
                return devs[dev_id]
            if time.monotonic() > deadline:
                self.fail(f"{dev_id} state {st}, want {want}")
            time.sleep(0.1)

    def test_movie_night_with_z2m_and_ha_devices(self):
        self.wait_state(LAMP, {"on": True, "brightness": 80})
        self.wait_state(BLIND, {"position": 100})
        self.wait_state(SHUTTER, {"position": 100})
        mark = self.dev.mark()
        self.dev.publish(f"{P}/intent", {"id": "i-eco", "intent": "scene.movie_night",
                                         "slots": {"room": "living"}})
        reply = self.dev.wait_for(topic=f"{P}/intent/i-eco/result", since=mark,
                                  what="the movie night reply")
        self.assertNotIn("error", reply.json, reply)
        plan_id = reply.json["plan_id"]
        steps = {s["device"] for s in reply.json["steps"]}
        self.assertTrue({LAMP, BLIND, SHUTTER} <= steps, reply.json["steps"])

        lamp_set = self.dev.wait_for(topic="zigbee2mqtt/living/sofa lamp/set", since=mark,
                                     what="the lamp's Zigbee2MQTT command")
        self.assertEqual(lamp_set.json, {"state": "ON", "brightness": 76})
        blind_set = self.dev.wait_for(topic="zigbee2mqtt/living/blind/set", since=mark,
                                      what="the blind's Zigbee2MQTT command")
        self.assertEqual(blind_set.json, {"position": 0})
        shutter_set = self.dev.wait_for(topic="shellies/shutter-living/roller/0/command/pos",
                                        since=mark, what="the shutter's set-position command")
        self.assertEqual(shutter_set.text, "0")
        self.assertFalse(lamp_set.retain or shutter_set.retain)
        # Nothing went to hearth's native set topics for these devices.
        native = [m.topic for m in self.dev.messages(f"{P}/device/+/set", since=mark)]
        self.assertEqual(native, [])

        # The devices do as told and say so, each in its own terms.
        self.dev.publish("zigbee2mqtt/living/sofa lamp",
                         {"state": "ON", "brightness": 76, "color_temp": 370, "linkquality": 90})
        self.dev.publish("zigbee2mqtt/living/blind", {"position": 0, "state": "CLOSE"})
        self.dev.publish("shellies/shutter-living/roller/0/pos", "0")
        done = self.dev.wait_for(lambda m: m.json["state"] in ("completed", "failed",
                                                              "compensated"),
                                 topic=f"{P}/plan/{plan_id}", since=mark, timeout=20,
                                 what=f"plan {plan_id} ending")
        self.assertEqual(done.json["state"], "completed", done)
        by_dev = {s["device"]: s["state"] for s in done.json["steps"]}
        for d in (LAMP, BLIND, SHUTTER):
            self.assertEqual(by_dev[d], "confirmed", done.json["steps"])
        self.wait_state(LAMP, {"on": True, "brightness": 30})

    def test_bad_payloads_answered_on_error(self):
        self.devices([LAMP, SHUTTER])
        cases = [
            ("zigbee2mqtt/living/sofa lamp", b"ON at last", "bad_json"),
            ("zigbee2mqtt/living/sofa lamp", b"[1,2]", "bad_request"),
            ("zigbee2mqtt/living/blind/availability", b"sort of", "bad_request"),
            ("homeassistant/light/broken/config", b"{\"name\":", "bad_json"),
            ("homeassistant/switch/noid/config", b"{\"name\":\"x\",\"cmd_t\":\"x/set\"}",
             "bad_request"),
        ]
        for topic, payload, code in cases:
            mark = self.dev.mark()
            self.dev.publish(topic, payload)
            e = self.dev.wait_for(lambda m: m.json["topic"] == topic, topic=f"{P}/error",
                                  since=mark, what=f"an error for {topic}")
            self.assertEqual(e.json["error"], code, e)
            self.assertTrue(e.json["detail"], e)
        # A broken device list changes nothing.
        mark = self.dev.mark()
        self.dev.publish("zigbee2mqtt/bridge/devices", b"{\"oops\":", retain=True)
        e = self.dev.wait_for(topic=f"{P}/error", since=mark)
        self.assertEqual(e.json["topic"], "zigbee2mqtt/bridge/devices")
        self.hub_.check_alive()
        devs = self.devices([LAMP, SHUTTER])
        self.assertEqual(devs[LAMP]["room"], "living")
        # Still working: the lamp's state still arrives.
        self.dev.publish("zigbee2mqtt/living/sofa lamp", {"state": "OFF"})
        self.wait_state(LAMP, {"on": False})


if __name__ == "__main__":
    harness.main()
