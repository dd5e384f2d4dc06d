"""steep.compile_rule: a rule compiled from a string steps as the catalogue's, is cached by content,
reports compile errors on the user's line, and carries its implied norm.

The tests use the cache CTest names (STEEP_CACHE_DIR, this build's; else a temporary one) but remove
their two rules' objects first, so each run compiles them cold: Lion, timed in setUpModule, and Signum.
The precompiled header is built there if the cache lacks it, and timed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

import steep
import steep.torch
from steep import _jit_build, jit

from helpers import clones, params_like, set_grads

# Lion as dsl/steep/rules/lion.hpp writes it, spelled out.
LION = '-lr * (sign(beta1 * prev(ema<"exp_avg">(grad, beta2)) + (1.0 - beta1) * grad) + weight_decay * param)'
LION_HYPER = {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0}
SIGNUM = '-lr * sign(ema<"m">(grad, beta))'
TEMPORARY = None


def setUpModule():
    global TEMPORARY
    if not os.environ.get("STEEP_CACHE_DIR"):
        TEMPORARY = os.environ["STEEP_CACHE_DIR"] = tempfile.mkdtemp(prefix="steep-cache-")
    for expr, names in ((LION, LION_HYPER), (SIGNUM, ["lr", "beta"])):
        path = _jit_build.cached_path(jit.generate(expr, list(names), "float64"))
        if os.path.exists(path):
            os.remove(path)
    t0 = time.perf_counter()
    _jit_build.precompiled_header()
    t1 = time.perf_counter()
    rule = jit.compile(LION, hyper=LION_HYPER, dtype="float64")
    print(f"\ncold: precompiled header {t1 - t0:.2f} s (0 if the cache had it), then Lion (float64) "
          f"{rule.compile_seconds['float64']:.2f} s + dlopen {rule.load_seconds['float64'] * 1e3:.1f} ms")


def tearDownModule():
    if TEMPORARY is not None:
        del os.environ["STEEP_CACHE_DIR"]
        shutil.rmtree(TEMPORARY, ignore_errors=True)


class CompiledLion(unittest.TestCase):
    def test_trajectory_equals_the_catalogues_lion_bitwise(self):
        Lion = steep.compile_rule(LION, hyper=LION_HYPER, dtype="float64", name="Lion")
        a = params_like([(7, 5), (5,), (3, 4)], dtype=torch.float64)
        b = clones(a)
        ours = Lion([{"params": a[:2]}, {"params": a[2:], "lr": 3e-4}], lr=2e-4, beta1=0.8, weight_decay=0.1,
                    threads=1)
        ref = steep.torch.Lion([{"params": b[:2]}, {"params": b[2:], "lr": 3e-4}], lr=2e-4, betas=(0.8, 0.99),
                               weight_decay=0.1, threads=1)
        for step in range(20):
            set_grads(zip(a, b), step)
            if step == 10:  # a schedule's change, read at the next step
                ours.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = 5e-5
            ours.step(), ref.step()
            for x, y in zip(a, b):
                self.assertTrue(torch.equal(x, y), f"step {step}: max diff {(x - y).abs().max().item()}")
        for x, y in zip(a, b):
            self.assertTrue(torch.equal(ours.state[x]["exp_avg"], ref.state[y]["exp_avg"]))
        self.assertEqual(ours.state[a[0]]["step"].item(), 20)
        self.assertEqual(ours.last_outcome, "applied")
        self.assertIn("exp_avg", ours.describe())

    def test_a_refused_hyperparameter_names_itself_and_writes_nothing(self):
        Lion = steep.compile_rule(LION, hyper=LION_HYPER, dtype="float64")
        p = params_like([(4,)], dtype=torch.float64)
        opt = Lion(p, beta2=1.5)
        set_grads([(p[0], p[0])], 0)
        before = p[0].detach().clone()
        with self.assertRaisesRegex(ValueError, "beta2"):
            opt.step()
        self.assertTrue(torch.equal(p[0], before))
        with self.assertRaisesRegex(ValueError, "no hyperparameter \\['betas'\\]"):
            Lion(p, betas=(0.9, 0.9))


    def test_refusals_name_the_tensor_and_write_nothing(self):
        Lion = steep.compile_rule(LION, hyper=LION_HYPER, dtype="float64")
        p = params_like([(3, 4)], dtype=torch.float64)
        opt = Lion(p)
        p[0].grad = torch.ones(4, 3, dtype=torch.float64).t()  # a transposed view: not contiguous
        before = p[0].detach().clone()
        with self.assertRaisesRegex(ValueError, "group 0 gradient 0: .*contiguous=False"):
            opt.step()
        self.assertTrue(torch.equal(p[0], before))
        p[0].grad = torch.full((3, 4), float("nan"), dtype=torch.float64)
        with self.assertRaisesRegex(steep.NonFiniteError, "group0.param0"):
            opt.step()
        self.assertTrue(torch.equal(p[0], before))
        with self.assertRaisesRegex(ValueError, "role 'output': expected one of"):
            Lion([{"params": p, "role": "output"}])

    def test_a_checkpoint_continues_bitwise_and_the_catalogues_loads(self):
        Lion = steep.compile_rule(LION, hyper=LION_HYPER, dtype="float64")
        a = params_like([(7, 5), (5,)], dtype=torch.float64)
        b = clones(a)
        ref = steep.torch.Lion(a, lr=2e-4, betas=(0.8, 0.99), weight_decay=0.1, threads=1)
        ours = Lion(b, lr=2e-4, beta1=0.8, weight_decay=0.1, threads=1)
        for step in range(5):
            set_grads(zip(a, b), step)
            ref.step(), ours.step()
        c, d = clones(b), clones(a)
        from_ours = Lion(c, lr=2e-4, beta1=0.8, weight_decay=0.1, threads=1)
        from_ours.load_state_dict(ours.state_dict())
        from_catalogue = Lion(d, lr=2e-4, beta1=0.8, weight_decay=0.1, threads=1)
        from_catalogue.load_state_dict(ref.state_dict())  # steep.torch.Lion's keys: exp_avg, step
        self.assertEqual(from_catalogue.state[d[0]]["step"].item(), 5)
        for step in range(5, 10):
            set_grads(zip(a, b), step)
            for x, y, z in zip(b, c, d):
                y.grad, z.grad = x.grad.clone(), x.grad.clone()
            for opt in (ref, ours, from_ours, from_catalogue):
                opt.step()
            for w, x, y, z in zip(a, b, c, d):
                self.assertTrue(torch.equal(w, x) and torch.equal(x, y) and torch.equal(x, z), f"step {step}")
        bad = ours.state_dict()
        bad["state"][0]["v"] = bad["state"][0]["exp_avg"]
        fresh = Lion(clones(b))
        with self.assertRaisesRegex(ValueError, "the state has 'v', which the rule does not keep"):
            fresh.load_state_dict(bad)
        self.assertEqual(len(fresh.state), 0)

    def test_a_state_view_keeps_steeps_memory_alive(self):
        Lion = steep.compile_rule(LION, hyper=LION_HYPER, dtype="float64")
        p = params_like([(5,)], dtype=torch.float64)
        opt = Lion(p)
        set_grads([(p[0], p[0])], 0)
        opt.step()
        m, expected = opt.state[p[0]]["exp_avg"], (1 - 0.99) * p[0].grad
        del opt
        torch.testing.assert_close(m, expected, rtol=1e-15, atol=0)


class CompiledSignum(unittest.TestCase):
    def test_numpy_trajectory_equals_a_numpy_signum(self):
        rule = jit.compile(SIGNUM, hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
        rng = np.random.default_rng(3)
        w = rng.standard_normal((6, 3))
        ref, m = w.copy(), np.zeros_like(w)
        opt = rule.numpy({"w": w}, lr=0.02, beta=0.8, threads=1)
        for _ in range(15):
            g = rng.standard_normal(w.shape)
            self.assertEqual(opt.step({"w": g}), "applied")
            m = 0.8 * m + (1 - 0.8) * g
            ref = ref - 0.02 * np.sign(m)
            np.testing.assert_array_equal(w, ref)
        np.testing.assert_allclose(opt.state("w", "m"), m, rtol=1e-15, atol=0)

    def test_implied_norm_of_signum_is_linf(self):
        rule = jit.compile(SIGNUM, hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
        self.assertEqual(rule.implied_norm.name, "linf")
        self.assertTrue(rule.implied_norm.known)
        self.assertIn("m", rule.describe())

    def test_a_second_compile_is_a_cache_hit_without_the_compiler(self):
        jit.compile(SIGNUM, hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
        calls = []
        real = _jit_build._compile
        _jit_build._compile = lambda *a: calls.append(a) or real(*a)
        try:
            _jit_build._memo.pop("headers")  # a new process hashes steep's headers again
            t0 = time.perf_counter()
            rule = jit.compile(SIGNUM, hyper={"lr": 0.5, "beta": 0.9}, dtype="float64")  # values: not in the key
            warm = time.perf_counter() - t0
        finally:
            _jit_build._compile = real
        print(f"\nwarm compile_rule (headers hashed, cache hit, dlopen): {warm * 1e3:.1f} ms "
              f"(dlopen {rule.load_seconds['float64'] * 1e3:.1f} ms)")
        self.assertEqual(calls, [])
        self.assertEqual(rule.compile_seconds["float64"], 0.0)

    def test_a_changed_source_or_steep_is_compiled_again(self):
        jit.compile(SIGNUM, hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
        calls = []

        class Stop(Exception):
            pass

        def stub(args, cwd):
            calls.append(args)
            raise Stop

        real, real_digest = _jit_build._compile, _jit_build._memo["headers"]
        _jit_build._compile = stub
        try:
            with self.assertRaises(Stop):  # another expression: another source
                jit.compile(SIGNUM + " * 1.0", hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
            _jit_build._memo["headers"] = "0" * 64  # a steep whose headers differ
            with self.assertRaises(Stop):
                jit.compile(SIGNUM, hyper={"lr": 0.01, "beta": 0.9}, dtype="float64")
        finally:
            _jit_build._compile, _jit_build._memo["headers"] = real, real_digest
        self.assertEqual(len(calls), 2)


FAKE_COMPILER = """import sys, time
if "--version" in sys.argv:
    print("fake compiler 1")
    sys.exit(0)
with open(sys.argv[0] + ".log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
time.sleep(1)
open(sys.argv[sys.argv.index("-o") + 1], "w").close()
"""
RACE = """import sys
from steep import _jit_build as b
b.cfg.CXX = sys.argv[1]
print(b.build("// no test loads this\\n", "x")[0])
"""


class ConcurrentProcesses(unittest.TestCase):
    def test_two_processes_compile_a_rule_once(self):
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "fake-c++")
            with open(fake, "w") as f:
                f.write(f"#!{sys.executable}\n" + FAKE_COMPILER)
            os.chmod(fake, 0o755)
            env = dict(os.environ, STEEP_CACHE_DIR=os.path.join(d, "cache"))
            procs = [subprocess.Popen([sys.executable, "-c", RACE, fake], env=env, stdout=subprocess.PIPE, text=True)
                     for _ in range(2)]
            outs = [p.communicate()[0].strip() for p in procs]
            self.assertEqual([p.returncode for p in procs], [0, 0])
            self.assertEqual(outs[0], outs[1])
            self.assertTrue(os.path.exists(outs[0]))
            with open(fake + ".log") as f:
                runs = f.read().splitlines()
            self.assertEqual(sum("rule.cpp" in r for r in runs), 1, runs)
            self.assertEqual(sum("c++-header" in r for r in runs), 1, runs)


class OldPrecompiledHeaders(unittest.TestCase):
    def test_all_but_the_three_used_last_are_removed_unless_in_use(self):
        with tempfile.TemporaryDirectory() as d:
            saved = os.environ["STEEP_CACHE_DIR"]
            os.environ["STEEP_CACHE_DIR"] = d
            try:
                for k in range(6):  # pch-0 used first, pch-5 last
                    os.makedirs(os.path.join(d, f"pch-{k}"))
                    open(os.path.join(d, f"pch-{k}", "lock"), "w").close()
                    os.utime(os.path.join(d, f"pch-{k}", "lock"), (1000 + k, 1000 + k))
                with _jit_build._locked(os.path.join(d, "pch-1", "lock"), shared=True):  # a compile using it
                    _jit_build._evict_headers(os.path.join(d, "pch-0"))  # the one just built
            finally:
                os.environ["STEEP_CACHE_DIR"] = saved
            self.assertEqual(sorted(os.listdir(d)), ["pch-0", "pch-1", "pch-4", "pch-5"])


class CompileErrors(unittest.TestCase):
    def test_an_error_names_the_users_line_and_the_first_message(self):
        with self.assertRaises(steep.RuleError) as e:
            jit.compile('-lr * sgn(ema<"m">(grad, 0.9))', hyper={"lr": 0.1}, dtype="float64")
        text = str(e.exception)
        self.assertTrue(text.startswith('rule:1: -lr * sgn(ema<"m">(grad, 0.9))'), text)
        self.assertRegex(text, "error: .*sgn.* was not declared")
        self.assertLess(len(text.splitlines()), 5, text)

    def test_a_static_assert_shows_its_message(self):
        with self.assertRaises(steep.RuleError) as e:
            jit.compile('-lr * ema<"m">(grad, 0.9) / sqrt(ema<"m">(square(grad), 0.99))', hyper={"lr": 0.1},
                        dtype="float64")
        self.assertRegex(str(e.exception), "static assertion failed: two different stages that own state share one "
                                           "slot name")

    def test_a_bad_hyperparameter_name_is_refused_before_compiling(self):
        with self.assertRaisesRegex(ValueError, "hyperparameter name 'learning rate'"):
            jit.compile("-lr * grad", hyper={"learning rate": 0.1})


if __name__ == "__main__":
    unittest.main()
