"""The recipe validator reports every problem (issue 5, item 1).

`hearthctl recipes validate FILE` prints each mistake of a recipe file on
its own line, `FILE: path.to.field: what is wrong`, on standard error and
exits 1; a good file gets `FILE: ok (...)` and exit 0. The same lines reach
`hearthctl recipes --recipes DIR` and hearthd's log, one per problem, while
the good recipes next to the bad one still load.
The bad file is tests/unit/fixtures/recipes/many/many.json (24 mistakes).
"""

import copy
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MANY = os.path.join(harness.SOURCE_DIR, "tests", "unit", "fixtures", "recipes", "many",
                    "many.json")
LIBRARY = os.path.join(harness.SOURCE_DIR, "recipes", "library")

# What is wrong in many.json, in the order the validator reports it.
MANY_LINES = [
    'id: must be 1-64 characters of A-Z a-z 0-9 _ . -',
    'version: must be a string',
    'intents[1]: must be a string',
    'slots.level.type: "percentage" is not one of room, string, number, percent, temperature',
    'sentences[0]: "[" is not closed',
    'mode: must be "single", "restart", "queued" or "parallel"',
    'max: must be from 1 to 64',
    'consents[1]: "dna" is not a data class (presence, media, audio, environment, energy, '
    'location, camera, device, other)',
    'targets.latency_ms: must be from 1 to 3600000',
    'approval: must be "auto", "always" or "never"',
    'steps[0].capability: unknown capability "light.disco"',
    'steps[0].target.room: refers to slot "area", which slots does not declare',
    'steps[0].pick: must be "all" or "one"',
    'steps[0].args.on: on must be true or false',
    'steps[0].args.sparkle: no capability has this property',
    'steps[0].holds.brightness: a bound is {"max":N} or {"min":N}',
    'steps[0].timeout_ms: must be from 10 to 3600000',
    'steps[0].compensate: must be true or false',
    'steps[0].after[0]: a step cannot wait for itself',
    'steps[0].after[1]: "nothing" is not an earlier step',
    'steps[1].id: "lights" is used by steps[0] too',
    'steps[1].capability: "sensor.motion" is a sensor and cannot be commanded',
    'steps[1].after[1]: "lights" is listed twice',
    'steps[2].id: is required (a string)',
]

# Three mistakes, nothing else wrong.
THREE = {
    "id": "test.three", "version": "1", "intents": ["test.three"],
    "mode": "often",
    "steps": [
        {"id": "a", "capability": "light.on_off", "args": {"on": True}, "pick": "any"},
        {"id": "b", "capability": "light.brightness", "args": {"brightness": 101},
         "after": ["a"]},
    ],
}
THREE_LINES = [
    'mode: must be "single", "restart", "queued" or "parallel"',
    'steps[0].pick: must be "all" or "one"',
    'steps[1].args.brightness: brightness must be a number from 0 to 100',
]


class RecipesValidateTest(harness.TestCase):

    def setUp(self):
        self.dir = harness.workdir("recipes")
        self.data = os.path.join(self.dir, "data")  # no daemon, no store

    def validate(self, path):
        return harness.run_ctl(self.data, "recipes", "validate", path)

    def test_every_problem_one_line_each(self):
        r = self.validate(MANY)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.splitlines(), [f"{MANY}: {l}" for l in MANY_LINES])

    def test_three_mistakes_three_lines(self):
        path = os.path.join(self.dir, "three.json")
        with open(path, "w") as f:
            json.dump(THREE, f)
        r = self.validate(path)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.splitlines(), [f"{path}: {l}" for l in THREE_LINES])

        # Fixed, it is fine, and says so on standard output.
        fixed = copy.deepcopy(THREE)
        fixed["mode"] = "queued"
        fixed["steps"][0]["pick"] = "one"
        fixed["steps"][1]["args"]["brightness"] = 100
        with open(path, "w") as f:
            json.dump(fixed, f)
        r = self.validate(path)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r)
        self.assertEqual(r.stdout, f"{path}: ok (test.three 1, 2 steps)\n")

    def test_library_recipe_ok(self):
        path = os.path.join(LIBRARY, "scene.movie_night.json")
        r = self.validate(path)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r)
        self.assertEqual(r.stdout, f"{path}: ok (scene.movie_night 1.0.0, 3 steps)\n")

    def test_not_json_and_missing_file(self):
        path = os.path.join(self.dir, "broken.json")
        with open(path, "w") as f:
            f.write('{"id": "x", ')
        r = self.validate(path)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertTrue(r.stderr.startswith(f"{path}: "), r.stderr)
        r = self.validate(os.path.join(self.dir, "nope.json"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("nope.json: cannot read", r.stderr)

    def folder(self):
        """A recipe folder: movie night (good) and many.json (24 mistakes)."""
        d = os.path.join(self.dir, "book")
        os.mkdir(d)
        shutil.copy(os.path.join(LIBRARY, "scene.movie_night.json"), d)
        shutil.copy(MANY, d)
        return d, os.path.join(d, "many.json")

    def test_recipes_folder_lists_every_problem(self):
        d, bad = self.folder()
        r = harness.run_ctl(self.data, "recipes", "--recipes", d, "--json")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual([x["id"] for x in json.loads(r.stdout)], ["scene.movie_night"])
        self.assertEqual(r.stderr.splitlines(),
                         [f"hearthctl: {bad}: {l} (not loaded)" for l in MANY_LINES])

    def test_hearthd_logs_every_problem(self):
        d, bad = self.folder()
        broker = self.broker()
        phone = self.client(broker)
        hub = self.hub(broker, args=["--recipes", d])
        hub.wait_online(phone)
        r = harness.run_ctl(hub.data_dir, "recipes", "--json")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual([x["id"] for x in json.loads(r.stdout)], ["scene.movie_night"])
        logged = [l.split(" recipes  ", 1)[1] for l in hub.log().splitlines()
                  if " recipes  " in l and "(recipe not loaded)" in l]
        self.assertEqual(logged, [f"{bad}: {l} (recipe not loaded)" for l in MANY_LINES])


if __name__ == "__main__":
    harness.main()
