"""kill -9 at random moments while intents flow (issue 3, DESIGN.md section 5).

One broker, one simulated home (tests/sim/homes/movie.json, its devices
answering in 5 ms, the blind in 150 ms) and one data dir for the whole run.
Each iteration starts hearthd on that data dir, waits for it to be online,
lets a thread publish a few intents (QoS 1, unique ids: movie night in the
living room or the bedroom, some previews, and now and then a "button press"
on the sim that undoes the scene so the next plan has work to do), sleeps a
random 0-300 ms and kills hearthd with SIGKILL.

After every kill, with no daemon running:
  (a) `hearthctl episodes --json --limit 100000` succeeds: the store opens;
  (b) `hearthctl audit verify` exits 0, and the chain's last sequence number
      never goes down (skipped, with one note, while the command does not
      exist);
  (c) every episode seen after an earlier kill is still there, and no plan
      has two episodes;
  (e) every plan whose terminal event (or terminal reply) was received before
      the kill has its episode: the hub says it only after the commit.
After the next start:
  (d) every plan whose reply "running" (or "queued") was received before the
      kill, and that had no episode yet, reaches a terminal state: its event
      is seen on hearth/home/plan/<id> (or its episode appears), within a
      bounded wait. Interrupted plans are resumed (issue 6 item 8), not
      closed: hearthd waits plan.resume_settle_ms (200 ms here) for the
      devices' states, then takes them up.
At the end (after a last start and a clean stop):
  (f) no step whose confirmation was journaled is dispatched again: for
      every (plan, step, device) whose "confirmed" state the phone heard in
      an event or reply before kill k (said only after the commit), the
      sim's command log has no command for it (compensation commands, which
      carry "compensation": true, aside) received after the start that
      followed kill k;
  (g) no device is left half-way without the plan saying so: every episode
      "completed" has only confirmed, skipped or rebound steps; every
      "compensated" one has no step left confirmed (unless handed over),
      dispatched or pending; every "failed" one's reason says what could not
      be put back ("could not put back: ...");
  (h) the plan journal is empty: every accepted plan ended (mdb_dump).

HEARTH_CRASH_ITERATIONS (default 100; scripts/test.sh's test stage sets the
issue's 200, see docs/architecture.md) sets the number of kills,
HEARTH_CRASH_SEED the random seed (printed at the start, to replay a run).
The summary line at the end gives iterations, intents, replies, episodes and
interrupted plans closed.
"""

import concurrent.futures
import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

P = "hearth/home"
SIM = "hearth-sim/home"
TERMINAL = {"completed", "compensated", "failed", "denied", "expired"}
ACCEPTED = {"running", "awaiting_approval", "compensating", "queued"}
# Device states the scene changes: publishing them on the sim's control topic
# (someone pressing the device's own button) gives the next plan work to do.
UNDO = {
    "living": {"lamp-1": {"on": True, "brightness": 80}, "blind-1": {"position": 100},
               "tv-1": {"on": False}},
    "bedroom": {"bedlamp-1": {"on": False, "brightness": 0}},
}
# Fast devices, and a blind slow enough that many kills catch a plan in flight.
DEVICE_LATENCY_MS = {"blind-1": 150}
DEVICE_LATENCY_DEFAULT_MS = 5


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


class CrashTest(harness.TestCase):

    def setUp(self):
        self.iterations = env_int("HEARTH_CRASH_ITERATIONS", 100)
        self.seed = env_int("HEARTH_CRASH_SEED", int(time.time() * 1000) % 1000000)
        self.rng = random.Random(self.seed)
        sys.stderr.write(f"crash: {self.iterations} iterations, seed {self.seed} "
                         f"(HEARTH_CRASH_SEED={self.seed} replays the same choices)\n")

        self.broker_ = self.broker()
        self.phone = self.client(self.broker_)
        self.phone.subscribe(f"{P}/#")
        self.remote = self.client(self.broker_)  # publishes intents and button presses

        with open(os.path.join(harness.SOURCE_DIR, "tests", "sim", "homes", "movie.json")) as f:
            home = json.load(f)
        for d in home["devices"]:
            d["latency_ms"] = DEVICE_LATENCY_MS.get(d["id"], DEVICE_LATENCY_DEFAULT_MS)
        home_file = os.path.join(harness.workdir("home"), "movie-fast.json")
        with open(home_file, "w") as f:
            json.dump(home, f)
        self.sim_ = self.sim(self.broker_, home_file, seed=self.seed)
        self.phone.wait_for(topic=f"{P}/device/bedlamp-1/state", what="the sim's last state")
        conf = os.path.join(harness.workdir("conf"), "hearth.json")
        with open(conf, "w") as f:
            json.dump({"plan": {"resume_settle_ms": 200}}, f)
        self.hub_ = self.hub(self.broker_, start=False, config=conf)

        # What the phone heard, folded in incrementally (ingest()).
        self.cursor = 0
        self.replies = {}          # intent id -> first reply (json)
        self.double_replies = {}   # intent id -> replies with another plan id
        self.reply_count = 0
        self.running = {}          # plan id -> (intent id, iteration it was sent in)
        self.terminal = {}         # plan id -> terminal event json
        self.interrupted = set()   # plan ids closed as interrupted (event or episode)
        # What the store holds.
        self.episodes_seen = set()
        self.sent = {}             # intent id -> iteration it was published in
        self.audit_available = None
        self.audit_checks = 0
        self.audit_last = 0
        self.startups = []
        self.iteration = 0
        self.start_ms = {}         # iteration -> wall ms just before its hearthd started
        self.confirmed = {}        # (plan, step, device) -> iteration its confirmation was heard
        self.last_episodes = []
        self.resumed = 0           # plans in flight at a kill, taken up after the restart

    # ---- what the phone heard

    def ingest(self):
        msgs = self.phone.messages("#", since=self.cursor)
        self.cursor += len(msgs)
        for m in msgs:
            parts = m.topic.split("/")
            if m.json is None or not isinstance(m.json, dict):
                continue
            if len(parts) == 5 and parts[2] == "intent" and parts[4] == "result":
                self.on_reply(parts[3], m.json)
            elif len(parts) == 4 and parts[2] == "plan":
                self.note_confirmed(parts[3], m.json)
                st = m.json.get("state")
                if st in TERMINAL and parts[3] not in self.terminal:
                    self.terminal[parts[3]] = m.json
                    if "interrupted" in str(m.json.get("reason", "")):
                        self.interrupted.add(parts[3])

    def note_confirmed(self, plan_id, body):
        for st in body.get("steps") or []:
            if isinstance(st, dict) and st.get("state") == "confirmed":
                self.confirmed.setdefault((plan_id, st.get("id"), st.get("device")),
                                          self.iteration)

    def on_reply(self, intent_id, body):
        self.reply_count += 1
        if body.get("plan_id"):
            self.note_confirmed(body["plan_id"], body)
        first = self.replies.get(intent_id)
        if first is not None:
            if first.get("plan_id") != body.get("plan_id"):
                self.double_replies.setdefault(intent_id, []).append(body)
            return
        self.replies[intent_id] = body
        plan_id = body.get("plan_id")
        if not plan_id:
            return
        if body.get("state") in ACCEPTED:
            self.running[plan_id] = (intent_id, self.sent.get(intent_id))
        elif body.get("state") in TERMINAL:
            self.terminal.setdefault(plan_id, body)

    # ---- the intents

    def flow(self, it, stop):
        """Publish a few intents (and button presses) with small gaps."""
        rng = random.Random(self.rng.random())
        for k in range(rng.randint(3, 6)):
            if stop.is_set():
                return
            room = rng.choice(("living", "living", "bedroom"))
            if rng.random() < 0.6:
                for dev, state in UNDO[room].items():
                    self.remote.publish(f"{SIM}/{dev}/state", state)
            intent_id = f"c{it}-{k}-{rng.randrange(1 << 30):x}"
            body = {"id": intent_id, "intent": "scene.movie_night", "slots": {"room": room},
                    "source": "crash-test", "user": "alice"}
            if rng.random() < 0.25:
                body["preview"] = True
            self.sent[intent_id] = it
            try:
                self.remote.publish(f"{P}/intent", body)
            except AssertionError as e:  # no PUBACK: the broker is stuck, say so
                sys.stderr.write(f"crash: iteration {it}: {e}\n")
                return
            time.sleep(rng.uniform(0, 0.08))

    # ---- hearthctl

    def ctl_checks(self, it):
        """(a) the store opens, (b) the audit chain verifies. The episodes."""
        want_audit = self.audit_available is not False
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            f_eps = ex.submit(harness.run_ctl, self.hub_.data_dir, "episodes", "--json",
                              "--limit", "100000")
            f_aud = ex.submit(harness.run_ctl, self.hub_.data_dir, "audit", "verify", "--json") \
                if want_audit else None
            eps, aud = f_eps.result(), f_aud.result() if f_aud else None
        self.assertEqual(eps.returncode, 0,
                         f"iteration {it}: the store does not open after kill -9: "
                         f"hearthctl episodes exited {eps.returncode}: {eps.stderr.strip()}")
        try:
            episodes = json.loads(eps.stdout)
        except ValueError as e:
            self.fail(f"iteration {it}: hearthctl episodes --json printed no JSON ({e}): "
                      f"{eps.stdout[:500]!r}")
        self.last_episodes = episodes
        if aud is not None:
            if aud.returncode != 0 and "unknown command" in aud.stderr:
                self.audit_available = False
                sys.stderr.write("crash: NOTE: `hearthctl audit verify` is not there yet "
                                 f"({aud.stderr.strip().splitlines()[0]}): audit check "
                                 "skipped for this run\n")
            else:
                self.audit_available = True
                self.audit_checks += 1
                self.assertEqual(aud.returncode, 0,
                                 f"iteration {it}: `hearthctl audit verify` exited "
                                 f"{aud.returncode} after kill -9:\n{aud.stdout}{aud.stderr}")
                self.check_audit_tip(it, aud.stdout)
        return episodes

    def check_audit_tip(self, it, out):
        """Committed audit records are never lost: the chain's end only grows."""
        try:
            last = int(json.loads(out)["last_seq"])
        except (ValueError, KeyError, TypeError):
            return  # another output format: the exit status was checked
        self.assertGreaterEqual(last, self.audit_last,
                                f"iteration {it}: the audit chain ended at {self.audit_last} "
                                f"after an earlier kill and now ends at {last}: {out.strip()}")
        self.audit_last = last

    def check_store(self, it):
        episodes = self.ctl_checks(it)
        ids = [e.get("id") for e in episodes]
        now = set(ids)
        dups = sorted({i for i in ids if ids.count(i) > 1}) if len(now) != len(ids) else []
        self.assertFalse(dups, f"iteration {it}: plans with more than one episode: {dups[:10]}")
        # (c) committed data is never lost.
        lost = self.episodes_seen - now
        self.assertFalse(lost, f"iteration {it}: episodes present after an earlier kill are "
                               f"gone: {sorted(lost)[:10]}{self.plan_log(sorted(lost)[:3])}")
        self.episodes_seen = now
        for e in episodes:
            if "interrupted" in str(e.get("reason", "")):
                self.interrupted.add(e.get("id"))
        # (e) a terminal event or reply is said only after its episode's commit.
        said = {p for p in self.terminal if p not in now}
        self.assertFalse(said, f"iteration {it}: plans announced terminal before the kill "
                               f"have no episode: {sorted(said)[:10]}"
                               f"{self.plan_log(sorted(said)[:3])}")
        return now

    def plan_log(self, plan_ids):
        """Lines of hearthd's log about these plans (for failure messages)."""
        lines = [l for l in self.hub_.log().splitlines()
                 if l.startswith("==== ") or any(p in l for p in plan_ids)]
        return "\nhearthd log lines about them (and its starts):\n" + "\n".join(lines[-60:])

    # ---- kills and restarts

    def start_hub(self, it):
        since = self.phone.mark()
        self.iteration = it
        self.start_ms[it] = time.time() * 1000
        self.hub_.start()
        t0 = time.monotonic()
        timeout = max(30.0, 10 * max(self.startups, default=0))
        self.hub_.wait_online(self.phone, timeout=timeout)
        self.startups.append(time.monotonic() - t0)
        return since

    def kill_hub(self, it):
        killed = time.monotonic()
        self.hub_.kill9()
        # The broker publishes the last will once it has read everything hearthd
        # wrote before it died: after it, the phone has heard all the hub said.
        try:
            self.phone.wait_for(lambda m: m.json["state"] == "offline" and m.received >= killed,
                                topic=f"{P}/status", timeout=5, what="the last will")
        except AssertionError:
            time.sleep(0.2)
        self.ingest()

    def close_pending(self, it, pending):
        """(d) After a start: each pending plan reaches a terminal state."""
        if not pending:
            return
        self.resumed += len(pending)
        deadline = time.monotonic() + 40  # a resumed step may wait out its timeout and retries
        while True:
            self.ingest()
            left = [p for p in pending if p not in self.terminal]
            if not left or time.monotonic() >= deadline:
                break
            self.hub_.check_alive()
            time.sleep(0.02)
        if left:  # no event heard: the episode may still be there
            r = harness.run_ctl(self.hub_.data_dir, "episodes", "--json", "--limit", "100000")
            have = {e.get("id") for e in json.loads(r.stdout)} if r.returncode == 0 else set()
            left = [p for p in left if p not in have]
        self.assertFalse(left, f"iteration {it}: plans answered \"running\" before the kill of "
                               f"iteration {it - 1} never reached a terminal state after the "
                               f"restart (no event on {P}/plan/<id>, no episode): "
                               f"{[(p, self.running[p]) for p in left][:10]}"
                               f"{self.plan_log(left[:3])}")

    def test_kill9_while_intents_flow(self):
        begin = time.monotonic()
        pending = []
        kills_in_flight = 0
        for it in range(1, self.iterations + 1):
            self.start_hub(it)
            self.close_pending(it, pending)
            stop = threading.Event()
            th = threading.Thread(target=self.flow, args=(it, stop), daemon=True)
            th.start()
            time.sleep(self.rng.uniform(0, 0.3))
            self.kill_hub(it)
            stop.set()
            th.join(timeout=15)
            self.assertFalse(th.is_alive(), "the publishing thread is stuck")
            now = self.check_store(it)
            pending = [p for p in self.running if p not in now and p not in self.terminal]
            kills_in_flight += bool(pending)

        # One more start closes what the last kill left, and takes in the
        # intents the broker kept for hearthd's session meanwhile.
        self.start_hub(self.iterations + 1)
        self.close_pending(self.iterations + 1, pending)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(self.replies) < len(self.sent):
            self.ingest()
            time.sleep(0.05)
        self.ingest()
        # What those started ends too, before the clean stop (the journal must
        # be empty at the end).
        self.close_pending(self.iterations + 1,
                           [p for p in self.running if p not in self.terminal])
        self.assertEqual(self.hub_.stop(), 0, "hearthd did not stop cleanly on SIGTERM")
        self.check_store(self.iterations + 1)
        self.sim_.stop()

        redispatched = self.check_no_redispatch()
        halfway = self.check_no_halfway()
        self.check_journal_empty()

        unanswered = sorted(set(self.sent) - set(self.replies))
        previews = sum(1 for r in self.replies.values() if r.get("state") == "previewed")
        errors = sum(1 for r in self.replies.values() if "error" in r)
        summary = (f"crash: iterations={self.iterations} intents={len(self.sent)} "
                   f"replies={self.reply_count} (answered {len(self.replies)}, running "
                   f"{len(self.running)}, previews {previews}, errors {errors}) "
                   f"episodes={len(self.episodes_seen)} "
                   f"resumed={self.resumed} "
                   f"interrupted_closed={len(self.interrupted)} "
                   f"kills_with_plans_in_flight={kills_in_flight} "
                   f"audit_verified={self.audit_checks if self.audit_available else 'skipped'} "
                   f"audit_records={self.audit_last} "
                   f"unanswered={len(unanswered)} double_replies={len(self.double_replies)} "
                   f"confirmed_steps_checked={len(self.confirmed)} "
                   f"commands_after_confirmation={redispatched} "
                   f"episodes_checked_for_halfway={halfway} "
                   f"startup_max_s={max(self.startups):.2f} "
                   f"elapsed_s={time.monotonic() - begin:.1f} seed={self.seed}")
        print(summary, flush=True)
        if unanswered:
            # Intents hearthd had taken from the broker (QoS 1 acknowledged
            # on receipt) but not yet answered when it was killed: never
            # accepted, so not an invariant; reported for the record.
            sys.stderr.write(f"crash: intents never answered (taken and lost in a kill): "
                             f"{unanswered[:20]}\n")
        if self.double_replies:
            sys.stderr.write(f"crash: intents answered twice with different plans: "
                             f"{list(self.double_replies)[:20]}\n")

    # ---- the end checks

    def check_no_redispatch(self):
        """(f) A journaled confirmation is never followed by the step's command."""
        bad = []
        for c in self.sim_.commands():
            pl = c.get("payload")
            if not isinstance(pl, dict) or pl.get("compensation"):
                continue
            key = (pl.get("plan_id"), pl.get("step"), c.get("device"))
            it = self.confirmed.get(key)
            if it is None or it + 1 not in self.start_ms:
                continue
            if c.get("ts", 0) > self.start_ms[it + 1]:
                bad.append((key, it, c.get("ts")))
        self.assertFalse(bad, f"steps dispatched again after their confirmation was journaled "
                              f"(plan, step, device), iteration heard, command ts: {bad[:10]}"
                              f"{self.plan_log([b[0][0] for b in bad[:3]])}")
        return len(bad)

    def check_no_halfway(self):
        """(g) Every episode's steps agree with its outcome."""
        bad = []
        for e in self.last_episodes:
            states = [(s.get("device"), s.get("state"), s.get("note") or "")
                      for s in e.get("steps") or []]
            out = e.get("outcome")
            if out == "completed":
                wrong = [s for s in states if s[1] not in ("confirmed", "skipped", "rebound")]
            elif out == "compensated":
                wrong = [s for s in states
                         if s[1] in ("pending", "dispatched")
                         or (s[1] == "confirmed" and "handed over" not in s[2])]
            elif out == "failed":
                wrong = [] if "could not put back" in str(e.get("reason", "")) else states
            else:
                wrong = []
            if wrong:
                bad.append((e.get("id"), out, e.get("reason"), wrong))
        self.assertFalse(bad, f"episodes whose steps leave a device half-way without saying "
                              f"so: {bad[:5]}")
        return len(self.last_episodes)

    def check_journal_empty(self):
        """(h) No plan is left in the journal once everything ended."""
        r = subprocess.run(["mdb_dump", "-p", "-s", "journal", self.hub_.data_dir],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        body = r.stdout.split("HEADER=END", 1)[-1].replace("DATA=END", "").split()
        self.assertEqual(body, [], f"plans left in the journal: {r.stdout[:2000]}")


if __name__ == "__main__":
    harness.main()
