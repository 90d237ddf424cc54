"""Stream generators: the buffered shuffle is a seeded permutation with bounded
displacement and lazy consumption; batched keeps order and sizes."""

from __future__ import annotations

import itertools

import pytest

from proxyds.sources.stream import batched, shuffled

N = 50


@pytest.mark.parametrize("n", [0, 1, 2, 10, N])
@pytest.mark.parametrize("buffer_size", [1, 3, 10, N, 10 * N])
def test_shuffled_is_a_permutation(n, buffer_size):
    out = list(shuffled(range(n), buffer_size, seed=0))
    assert len(out) == n
    assert sorted(out) == list(range(n))


def test_shuffled_buffer_one_keeps_order():
    assert list(shuffled(range(N), 1, seed=0)) == list(range(N))


@pytest.mark.parametrize("buffer_size", [3, 10, N, 10 * N])
def test_shuffled_deterministic(buffer_size):
    assert list(shuffled(range(N), buffer_size, seed=4)) == list(shuffled(range(N), buffer_size, seed=4))


@pytest.mark.parametrize("buffer_size", [3, 10, N, 10 * N])
def test_shuffled_differs_across_seeds(buffer_size):
    orders = {tuple(shuffled(range(N), buffer_size, seed=s)) for s in range(5)}
    assert len(orders) == 5
    assert tuple(range(N)) not in orders


@pytest.mark.parametrize("buffer_size", [1, 3, 10])
def test_shuffled_displacement_bounded_by_buffer(buffer_size):
    # item i cannot come out before i - buffer_size other items have been emitted
    for seed in range(5):
        out = list(shuffled(range(N), buffer_size, seed=seed))
        position = {item: pos for pos, item in enumerate(out)}
        assert all(position[i] >= i - buffer_size for i in range(N))


def test_shuffled_is_lazy_on_an_endless_stream():
    first = list(itertools.islice(shuffled(itertools.count(), 8, seed=0), 20))
    assert len(set(first)) == 20
    assert max(first) < 20 + 8


def test_shuffled_large_buffer_spreads_first_item():
    # with the whole input buffered, the first output is uniform over the items
    firsts = [next(shuffled(range(5), 100, seed=s)) for s in range(500)]
    counts = [firsts.count(i) for i in range(5)]
    assert min(counts) > 60  # expected 100 each


def test_shuffled_passes_items_through_unchanged():
    items = [{"key": f"k{i}", "value": [i]} for i in range(20)]
    out = list(shuffled(items, 4, seed=1))
    assert sorted(out, key=lambda d: d["key"]) == sorted(items, key=lambda d: d["key"])
    assert all(any(o is it for it in items) for o in out)


@pytest.mark.parametrize(
    "n,batch_size,sizes",
    [(10, 3, [3, 3, 3, 1]), (10, 5, [5, 5]), (10, 1, [1] * 10), (10, 10, [10]), (10, 64, [10]), (0, 4, [])],
)
def test_batched_sizes(n, batch_size, sizes):
    batches = list(batched(range(n), batch_size))
    assert [len(b) for b in batches] == sizes
    assert all(isinstance(b, list) for b in batches)
    assert [x for b in batches for x in b] == list(range(n))


def test_batched_is_lazy_on_an_endless_stream():
    first = list(itertools.islice(batched(itertools.count(), 4), 3))
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_shuffled_then_batched_keeps_every_item():
    batches = list(batched(shuffled(range(103), 16, seed=2), 10))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(x for b in batches for x in b) == list(range(103))
