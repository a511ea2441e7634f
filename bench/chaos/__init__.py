"""The chaos run's parts: the scenario (scenario.py), the processes and the chaos
(harness.py) and the checks (verify.py). bench/chaos.py is the command; tests/test_chaos.py
runs a short version. See docs/reliability.md."""
