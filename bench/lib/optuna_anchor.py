"""Anchor for `npm run bench -- optimizers`: Optuna's TPE on the same test functions.

Reads one JSON job from stdin, writes one JSON document to stdout. The functions, their
domains and the noise stream are the same as bench/lib/test-functions.ts (keep them in step).
Run with Debian's /usr/bin/python3 and python3-optuna.
"""

import json
import math
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x):
    x1, x2 = x
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


H_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
H_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        inner = sum(H_A[i][j] * (x[j] - 1e-4 * H_P[i][j]) ** 2 for j in range(6))
        total -= H_ALPHA[i] * math.exp(-inner)
    return total


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def ackley(x):
    d = len(x)
    s1 = sum(v * v for v in x) / d
    s2 = sum(math.cos(2 * math.pi * v) for v in x) / d
    return -20 * math.exp(-0.2 * math.sqrt(s1)) - math.exp(s2) + 20 + math.e


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6),
    "rosenbrock4": (rosenbrock, [(-5.0, 10.0)] * 4),
    "ackley5": (ackley, [(-32.768, 32.768)] * 5),
    "hartmann6_noisy": (hartmann6, [(0.0, 1.0)] * 6),
}


def _mix32(z):
    z = (z + 0x9E3779B9) & 0xFFFFFFFF
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return (z ^ (z >> 16)) & 0xFFFFFFFF


def noise(seed, number, sigma):
    """N(0, sigma^2) from (seed, trial number) only, identical to the TypeScript side."""
    a = _mix32((seed * 1000003 + number * 2 + 1) & 0xFFFFFFFF)
    b = _mix32((a ^ 0x5BD1E995) & 0xFFFFFFFF)
    u1 = (a + 0.5) / 4294967296.0
    u2 = (b + 0.5) / 4294967296.0
    return sigma * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def distributions(bounds):
    return {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}


def regret_curve(name, seed, trials, sigma, optimum):
    fn, bounds = FUNCTIONS[name]
    dists = distributions(bounds)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")
    best_observed = math.inf
    best_true = math.inf
    curve = []
    for number in range(trials):
        trial = study.ask(dists)
        x = [trial.params[f"x{i}"] for i in range(len(bounds))]
        true_value = fn(x)
        observed = true_value + (noise(seed, number, sigma) if sigma > 0 else 0.0)
        study.tell(trial, observed)
        if observed < best_observed:
            best_observed = observed
            best_true = true_value
        curve.append(best_true - optimum)
    return curve


def suggestion_seconds(name, completed, repeats, seed):
    """Median CPU seconds of study.ask() with `completed` finished trials (random points) in the study.

    CPU time, not wall time: the benchmark machine is shared, and the TypeScript side measures
    the same way (process.cpuUsage).
    """
    fn, bounds = FUNCTIONS[name]
    dists = distributions(bounds)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")
    rng = optuna.samplers.RandomSampler(seed=seed)._rng
    done = []
    for _ in range(completed):
        params = {k: float(rng.uniform(d.low, d.high)) for k, d in dists.items()}
        value = fn([params[f"x{i}"] for i in range(len(bounds))])
        done.append(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    study.add_trials(done)
    times = []
    for _ in range(2):  # warm caches, as the TypeScript side warms its JIT
        study.tell(study.ask(dists), state=optuna.trial.TrialState.FAIL)
    for _ in range(repeats):
        t0 = time.process_time()
        trial = study.ask(dists)
        times.append(time.process_time() - t0)
        # Failing the trial keeps the number of completed trials fixed between repeats.
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    times.sort()
    mid = len(times) // 2
    return times[mid] if len(times) % 2 == 1 else (times[mid - 1] + times[mid]) / 2


def main():
    job = json.load(sys.stdin)
    if job["kind"] == "regret":
        out = regret_curve(job["function"], job["seed"], job["trials"], job["sigma"], job["optimum"])
    else:
        out = suggestion_seconds(job["function"], job["completed"], job["repeats"], job["seed"])
    json.dump({"optuna": optuna.__version__, "result": out}, sys.stdout)


if __name__ == "__main__":
    main()
