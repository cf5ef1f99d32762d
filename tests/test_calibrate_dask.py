"""`calibrate --scheduler`: a Dask LocalCluster on 127.0.0.1 with 2 worker processes gives the same result
as the local pool, also when a worker is killed mid-search (Dask reruns its tasks elsewhere)."""

from __future__ import annotations

import os
import signal
import time

import pytest

distributed = pytest.importorskip("distributed")

from offlinepack.calibrate import DaskPool, LocalPool, calibrate, pair_with_labels  # noqa: E402
from offlinepack.probabilities import open_probabilities  # noqa: E402
from tests.support.planted import write_planted_set  # noqa: E402

CANDIDATES = [{"threshold": round(0.1 + 0.05 * i, 2), "min_component_voxels": m} for i in range(9) for m in (0, 40)]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    probs, labels = write_planted_set(tmp_path_factory.mktemp("dask"), [0.5, 0.9] * 3, shape=(32, 32, 32))
    return pair_with_labels([(open_probabilities(probs), 1.0)], labels)


def _comparable(result) -> dict:
    rungs = [r | {"seconds": None} for r in result.to_dict()["rungs"]]
    return result.to_dict() | {"seconds": None, "pool": None, "rungs": rungs}


def test_the_halving_search_on_dask_gives_the_local_pools_result(cluster, labelled) -> None:
    local = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=LocalPool(1), strategy="halving")
    pool = DaskPool(cluster.scheduler_address)
    try:
        remote = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=pool, strategy="halving")
    finally:
        pool.close()
    assert remote.strategy == "halving" and remote.rungs[-1].name == "exact"
    assert _comparable(remote) == _comparable(local)


def test_dask_cluster_gives_the_same_result_as_the_local_pool(cluster, labelled) -> None:
    local = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=LocalPool(1))
    pool = DaskPool(cluster.scheduler_address)
    try:
        remote = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=pool)
        assert pool.describe()["workers"] == 2
    finally:
        pool.close()
    assert _comparable(remote) == _comparable(local)


def test_a_worker_killed_mid_search_changes_nothing(cluster, labelled) -> None:
    local = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=LocalPool(1))
    pool = DaskPool(cluster.scheduler_address)
    pids = pool.client.run(os.getpid)  # {worker address: pid}
    victim = sorted(pids.values())[0]
    killed: list[float] = []

    def on_round(event) -> None:
        # Killed from the search's own progress callback after the first round, so the later rounds' tasks
        # always meet a lost worker (a timer raced the search and lost on an idle machine). The nanny starts
        # a fresh worker; tasks sent to the dead one are retried.
        if event.event == "round" and not killed and event.volumes_done < event.volumes:
            os.kill(victim, signal.SIGKILL)
            killed.append(time.monotonic())

    try:
        remote = calibrate(labelled, candidates=CANDIDATES, folds=3, pool=pool, progress=on_round)
        finished = time.monotonic()
    finally:
        pool.close()
    assert killed and killed[0] < finished, "the worker died while the search was still running"
    assert _comparable(remote) == _comparable(local)


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    from offlinepack.errors import OfflinepackError

    with pytest.raises(OfflinepackError, match="cannot reach the Dask scheduler"):
        DaskPool("tcp://127.0.0.1:1", connect_timeout="2s")
