"""Several processes, one ensemble (``jax.distributed``): two processes on this machine, joined
through a coordinator on 127.0.0.1 with CPU devices (collectives through gloo), split the
members of ``gravuq ensemble --distributed`` and write the same posterior as one process; only
process 0 touches the output folder.

Process 1 runs a copy of the case in another folder (same config text, same files), so the output
folder its config names is its own: it must not exist afterwards. Units: densities in kg/m^3,
gz in mGal (positive down).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from gravuq.distributed import VARIABLES, initialize
from gravuq.errors import InputError

#: One run of the tiny case: 4 members, 3 Levenberg-Marquardt steps, a fixed prior and the stated
#: noise (no evidence fit), NetCDF only. Gauss-Newton steps amplify float32 rounding, so few steps.
INFERENCE = 'epochs = 3\npatience = 0\nprior_scale = "fixed"\nnoise = "stated"\n'
#: Seconds before a process that has not finished is killed (most of a run is compiling).
TIMEOUT_S = 400
GRAVUQ = [sys.executable, "-c", "from gravuq_cli.main import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**extra) -> dict:
    """This environment without a cluster's variables (the test must not join a real SLURM job)."""
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith(("SLURM_", "OMPI_", "PMI_", "GRAVUQ_", "JAX_COORDINATOR"))}
    return {**clean, "JAX_PLATFORMS": "cpu", "GRAVUQ_DISTRIBUTED_TIMEOUT": "120", **extra}


def start(arguments, env) -> subprocess.Popen:
    return subprocess.Popen(GRAVUQ + [str(argument) for argument in arguments], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    """Wait for every process (killing all of them, their children too, past the deadline)."""
    deadline = time.monotonic() + TIMEOUT_S
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return results


def densities(folder):
    import arviz as az

    posterior = az.from_netcdf(str(folder / "posterior.nc")).posterior
    return posterior["density"].values[0]  # (draw, z, y, x) kg/m^3


@pytest.mark.slow  # three runs of the CLI, each mostly compiling: about 100 s of CPU in all
def test_distributed_ensemble_on_two_processes_matches_one_process(tmp_path):
    from helpers import Case

    folders = {name: tmp_path / name for name in ("leader", "follower", "single")}
    folders["leader"].mkdir()
    config = Case(folders["leader"]).config("dist", inference=INFERENCE, formats=("netcdf",))
    for name in ("follower", "single"):
        shutil.copytree(folders["leader"], folders[name])

    def pair(single: bool = False):
        """The two processes of a distributed run (and with ``single`` a one-process run beside them)."""
        for attempt in range(2):  # a second port if another program took the first one meanwhile
            address = f"127.0.0.1:{free_port()}"
            runs = [start(["ensemble", folders[name] / config.name, "--distributed"],
                          environment(GRAVUQ_COORDINATOR=address, GRAVUQ_NUM_PROCESSES="2",
                                      GRAVUQ_PROCESS_ID=str(index)))
                    for index, name in enumerate(("leader", "follower"))]
            if single:
                runs.append(start(["ensemble", folders["single"] / config.name], environment()))
            results = finish(runs)
            if attempt == 0 and results[0][0] != 0 and "address already in use" in results[0][1].lower():
                continue
            return results

    (leader_code, leader), (follower_code, follower), (single_code, single) = pair(single=True)
    assert leader_code == 0, leader[-4000:]
    assert follower_code == 0, follower[-4000:]
    assert single_code == 0, single[-4000:]
    # The logs say which process each is, and which members it trained.
    assert "gravuq[0/2]: process 0 of 2" in leader and "trains members 1..2 of 4" in leader
    assert "gravuq[1/2]: process 1 of 2" in follower and "trains members 3..4 of 4" in follower
    assert "writes nothing" in follower and "process 0 of 2" not in single
    # Only process 0 wrote: the follower's own output folder was never made.
    results = {name: folders[name] / "results_dist" for name in folders}
    assert not results["follower"].exists()
    record = json.loads((results["leader"] / "run.json").read_text())
    assert record["status"] == "complete" and record["processes"] == 2 and record["devices"] == 2
    metrics = json.loads((results["leader"] / "metrics.json").read_text())
    assert metrics["processes"] == 2 and "processes" not in json.loads((results["single"] / "metrics.json").read_text())
    split, whole = densities(results["leader"]), densities(results["single"])
    assert split.shape == whole.shape == (4, 4, 8, 8)
    # The members differ from each other, so the match is member by member, not a coincidence.
    assert np.abs(whole[0] - whole[1]).max() > 1.0
    np.testing.assert_allclose(split, whole, rtol=0.0, atol=1e-5 * np.abs(whole).max())

    # Process 0 refusing to start (its folder now holds another config's results) stops the other
    # process too, with one plain message each, instead of leaving it waiting.
    record["config_hash"] = "another config"
    (results["leader"] / "run.json").write_text(json.dumps(record))
    (leader_code, leader), (follower_code, follower) = pair()
    assert leader_code == 2 and "holds the results of a different config" in leader, leader[-4000:]
    assert follower_code == 2 and "process 0 did not start the run" in follower, follower[-4000:]
    assert "Traceback" not in leader + follower and not results["follower"].exists()


def test_distributed_settings_are_checked_before_joining():
    with pytest.raises(InputError, match="GRAVUQ_NUM_PROCESSES, GRAVUQ_PROCESS_ID"):
        initialize({"GRAVUQ_COORDINATOR": "127.0.0.1:1234"})
    with pytest.raises(InputError, match="GRAVUQ_COORDINATOR = 'localhost': expected host:port"):
        initialize({"GRAVUQ_COORDINATOR": "localhost", "GRAVUQ_NUM_PROCESSES": "2", "GRAVUQ_PROCESS_ID": "0"})
    with pytest.raises(InputError, match=r"GRAVUQ_PROCESS_ID = '2': expected an integer 0\.\.1"):
        initialize({"GRAVUQ_COORDINATOR": "h:1", "GRAVUQ_NUM_PROCESSES": "2", "GRAVUQ_PROCESS_ID": "2"})
    assert VARIABLES == ("GRAVUQ_COORDINATOR", "GRAVUQ_NUM_PROCESSES", "GRAVUQ_PROCESS_ID")


def test_distributed_without_a_cluster_is_one_plain_error(tmp_path):
    (tmp_path / "config.toml").write_text("[data]\npath = 'stations.csv'\n")
    code, output = finish([start(["ensemble", tmp_path / "config.toml", "--distributed"], environment())])[0]
    assert code == 2, output
    assert "gravuq: error: --distributed: no cluster found" in output and "GRAVUQ_COORDINATOR" in output
    assert "Traceback" not in output
