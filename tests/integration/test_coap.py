"""The hub's CoAP side (issue 4, DESIGN.md section 4 "CoAP").

hearthd listens for CoAP on a free UDP port of ::1 (coap.listen in a
--config file). libcoap's own tools play the other side: coap-client POSTs
an intent and GETs /status, and coap-server (-d: resources made by PUT) is a
CoAP light announced with a native meta. Asserted: the CoAP reply is the
JSON the MQTT result topic would carry and the plan runs; the CoAP device
receives its command as a PUT (the resource then holds it), its state comes
back by Observe, and the plan completes; garbage gets 4.00 and an error on
hearth/home/error, and hearthd keeps running.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"


def tool(name):
    """coap-client / coap-server: Debian installs them per TLS flavour."""
    for cand in (name, f"{name}-notls", f"{name}-openssl", f"{name}-gnutls"):
        path = shutil.which(cand)
        if path:
            return path
    raise unittest.SkipTest(f"{name} is not installed (libcoap3-bin)")


def free_udp_port():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def coap(*args, timeout=20):
    """coap-client ARGS -> (stdout, stderr) as text; bounded."""
    p = subprocess.run([tool("coap-client"), "-B", "10"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.stdout.strip(), p.stderr.strip()


class CoapServer:
    """libcoap's example server on [::1]:port as a CoAP device, stopped by PID."""

    def __init__(self, port):
        self.port = port
        d = harness.workdir("coap-server")
        self.proc = harness._Proc("coap-server", [tool("coap-server"), "-A", "::1", "-p", port,
                                                  "-d", "10"], os.path.join(d, "coap-server.log"))

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out, _ = coap("-m", "get", f"coap://[::1]:{self.port}/.well-known/core", timeout=5)
            if out:
                return self
            time.sleep(0.1)
        raise AssertionError(f"coap-server on port {self.port} did not answer")

    def stop(self):
        return self.proc.stop(grace=3)


class CoapTest(harness.TestCase):

    def setUp(self):
        tool("coap-client")
        self.port = free_udp_port()
        cfg = os.path.join(harness.workdir("cfg"), "hearth.json")
        with open(cfg, "w") as f:
            json.dump({"coap": {"listen": f"[::1]:{self.port}"}}, f)
        self.broker_ = self.broker()
        self.phone = self.client(self.broker_)
        self.phone.subscribe(f"{P}/#")
        self.hub_ = self.hub(self.broker_, config=cfg)
        self.hub_.wait_online(self.phone)
        self.url = f"coap://[::1]:{self.port}"

    def post_intent(self, intent):
        out, err = coap("-m", "post", "-t", "json", "-e", json.dumps(intent), f"{self.url}/intent")
        self.assertTrue(out, f"no CoAP answer (stderr: {err})")
        return out

    def wait_plan(self, plan_id, state, timeout=15):
        return self.phone.wait_for(lambda m: m.json["state"] == state,
                                   topic=f"{P}/plan/{plan_id}", timeout=timeout,
                                   check=self.hub_.check_alive, what=f"plan {plan_id} {state}")

    def test_intent_status_and_health(self):
        self.sim(self.broker_, "movie.json")
        self.phone.wait_for(topic=f"{P}/device/bedlamp-1/state", what="the sim's last state")
        out = self.post_intent({"id": "c1", "intent": "scene.movie_night",
                                "slots": {"room": "living"}})
        reply = json.loads(out)
        self.assertNotIn("error", reply, reply)
        self.assertEqual(reply["id"], "c1")
        self.assertEqual(reply["intent"], "scene.movie_night")
        self.assertIn(reply["state"], ("running", "completed"))
        self.assertEqual({s["device"] for s in reply["steps"]}, {"lamp-1", "blind-1", "tv-1"})
        # It fits one CoAP block: the planner's workings are left out, and said so.
        self.assertLessEqual(len(out.encode()), 1024, out)
        trimmed = reply.get("trimmed", [])
        self.assertEqual(trimmed, ["alternatives", "critique", "score", "rationale"][:len(trimmed)],
                         reply)
        self.assertIn("alternatives", trimmed)
        for field in trimmed:
            self.assertNotIn(field, reply)
        self.wait_plan(reply["plan_id"], "completed")
        # The CoAP reply is the one reply: nothing on the MQTT result topic.
        self.assertEqual(self.phone.messages(f"{P}/intent/c1/result"), [])

        out, err = coap("-m", "get", f"{self.url}/status")
        status = json.loads(out)
        self.assertEqual(status["home"], "home")
        self.assertEqual(status["state"], "online")
        self.assertGreaterEqual(status["intents"], 1)
        out, err = coap("-m", "get", f"{self.url}/health")
        self.assertIn("store", json.loads(out))

    def test_coap_device_gets_put_and_reports_by_observe(self):
        devport = free_udp_port()
        dev = CoapServer(devport)
        self.addCleanup(dev.stop)
        dev.wait_ready()
        lamp = f"coap://[::1]:{devport}/lamp"
        self.phone.publish(f"{P}/device/lamp-c/meta",
                           {"room": "den", "kind": "light",
                            "capabilities": ["light.on_off", "light.brightness"],
                            "transport": "coap", "uri": lamp}, retain=True)
        time.sleep(0.3)
        out = self.post_intent({"id": "c2", "intent": "scene.movie_night",
                                "slots": {"room": "den"}})
        reply = json.loads(out)
        self.assertNotIn("error", reply, reply)
        self.assertEqual([s["device"] for s in reply["steps"]], ["lamp-c"])
        # Never reported state before: optimistic, confirmed when sent.
        self.assertEqual(reply["state"], "completed", reply)
        # The device holds the command (without the tracing keys).
        deadline = time.monotonic() + 10
        held = None
        while time.monotonic() < deadline:
            out, _ = coap("-m", "get", lamp)
            try:
                held = json.loads(out)
                break
            except ValueError:
                time.sleep(0.1)
        self.assertEqual(held, {"on": True, "brightness": 30})
        # Its state came back by Observe (after the PUT made the resource).
        deadline = time.monotonic() + 10
        while True:
            devs = json.loads(harness.run_ctl(self.hub_.data_dir, "devices", "--json").stdout)
            d = [x for x in devs if x["id"] == "lamp-c"][0]
            if (d.get("state") or {}).get("brightness") == 30:
                break
            self.assertLess(time.monotonic(), deadline, f"no observed state: {d}")
            time.sleep(0.2)
        self.assertTrue(d["state"]["on"])
        # A second command is a notification away: the observation holds.
        coap("-m", "put", "-t", "json", "-e", '{"on":false,"brightness":0}', lamp)
        deadline = time.monotonic() + 10
        while True:
            devs = json.loads(harness.run_ctl(self.hub_.data_dir, "devices", "--json").stdout)
            d = [x for x in devs if x["id"] == "lamp-c"][0]
            if d["state"].get("on") is False:
                break
            self.assertLess(time.monotonic(), deadline, f"no notification: {d}")
            time.sleep(0.2)

    def test_bad_input(self):
        mark = self.phone.mark()
        out, err = coap("-m", "post", "-e", "garbage", f"{self.url}/intent")
        self.assertIn("4.00", err + out)
        self.phone.wait_for(lambda m: m.json["error"] == "bad_json" and "CoAP" in m.json["detail"],
                            topic=f"{P}/error", since=mark, what="bad_json on the error topic")
        out, err = coap("-m", "post", "-t", "json", "-e", "[1,2]", f"{self.url}/intent")
        self.assertIn("4.00", err + out)
        out, err = coap("-m", "delete", f"{self.url}/intent")
        self.assertIn("4.05", err + out)
        out, err = coap("-m", "post", "-t", "json", "-e",
                        json.dumps({"intent": "x", "pad": "a" * 70000}), f"{self.url}/intent")
        self.assertIn("4.13", err + out)
        self.hub_.check_alive()
        out, _ = coap("-m", "get", f"{self.url}/status")
        self.assertEqual(json.loads(out)["state"], "online")


if __name__ == "__main__":
    harness.main()
