"""Importance: hand-built correctness matrices give the expected cases for either probe
order and on a tie; importance is ``weights[case - 1]``; bad input is rejected by name."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from proxyds.selection.importance import CASE_NAMES, DEFAULT_WEIGHTS, case_importance, probe_cases, validate_weights

# One row per combination; columns are (probe 0 correct, probe 1 correct).
FOUR_ROWS = np.array([[1, 1], [0, 0], [1, 0], [0, 1]], dtype=bool)


# --- probe_cases ---------------------------------------------------------------------------


def test_probe0_better():
    # Probe 0 has the higher accuracy: "only probe 0 right" is case 3, "only probe 1 right" is case 4.
    np.testing.assert_array_equal(probe_cases(FOUR_ROWS, (0.9, 0.5)), [1, 2, 3, 4])


def test_probe1_better():
    # Probe 1 has the higher accuracy: cases 3 and 4 swap relative to the test above.
    np.testing.assert_array_equal(probe_cases(FOUR_ROWS, (0.5, 0.9)), [1, 2, 4, 3])


def test_tie_counts_probe1_as_better():
    np.testing.assert_array_equal(probe_cases(FOUR_ROWS, (0.7, 0.7)), [1, 2, 4, 3])


def test_case_names_match_case_numbers():
    assert CASE_NAMES == ("both_correct", "both_wrong", "only_better_correct", "only_worse_correct")
    assert DEFAULT_WEIGHTS == (2.0, 1.0, 6.0, 1.0)


def test_output_dtype_shape_and_range():
    correct = np.random.default_rng(0).random((500, 2)) < 0.6
    cases = probe_cases(correct, (0.6, 0.8))
    assert cases.dtype == np.int8
    assert cases.shape == (500,)
    assert set(np.unique(cases)) <= {1, 2, 3, 4}


def test_case_counts_match_the_correctness_table():
    correct = np.random.default_rng(1).random((1000, 2)) < 0.5
    a, b = correct[:, 0], correct[:, 1]  # probe 1 is better below
    cases = probe_cases(correct, (0.4, 0.6))
    assert (cases == 1).sum() == (a & b).sum()
    assert (cases == 2).sum() == (~a & ~b).sum()
    assert (cases == 3).sum() == (b & ~a).sum()
    assert (cases == 4).sum() == (a & ~b).sum()
    assert np.bincount(cases, minlength=5)[1:].sum() == len(correct)


def test_relabelling_the_probes_does_not_change_cases():
    # Swapping the columns together with the accuracies (no tie) names the same better probe.
    correct = np.random.default_rng(2).random((300, 2)) < 0.5
    np.testing.assert_array_equal(probe_cases(correct, (0.3, 0.8)), probe_cases(correct[:, ::-1], (0.8, 0.3)))


def test_integer_correctness_is_read_as_bool():
    np.testing.assert_array_equal(probe_cases(FOUR_ROWS.astype(int), (0.9, 0.5)), [1, 2, 3, 4])


def test_empty_input():
    cases = probe_cases(np.zeros((0, 2), dtype=bool), (0.5, 0.6))
    assert cases.shape == (0,)
    assert case_importance(cases).shape == (0,)


@pytest.mark.parametrize("shape", [(4,), (4, 1), (4, 3), (4, 2, 1)])
def test_bad_correct_shape(shape):
    with pytest.raises(ValueError, match=r"shape \(N, 2\).*" + re.escape(str(shape))):
        probe_cases(np.zeros(shape, dtype=bool), (0.5, 0.6))


@pytest.mark.parametrize("accuracy", [(0.5,), (0.5, 0.6, 0.7)])
def test_bad_accuracy_length(accuracy):
    with pytest.raises(ValueError, match=rf"got {len(accuracy)}"):
        probe_cases(FOUR_ROWS, accuracy)


# --- case_importance -----------------------------------------------------------------------


def test_default_weights():
    cases = probe_cases(FOUR_ROWS, (0.9, 0.5))
    imp = case_importance(cases)
    assert imp.dtype == np.float64
    np.testing.assert_array_equal(imp, [2.0, 1.0, 6.0, 1.0])


def test_custom_weights():
    np.testing.assert_array_equal(case_importance(np.array([4, 3, 2, 1, 3]), (0.5, 1.5, 2.5, 3.5)),
                                  [3.5, 2.5, 1.5, 0.5, 2.5])


def test_importance_is_weight_lookup_on_random_cases():
    cases = np.random.default_rng(3).integers(1, 5, size=1000)
    weights = (0.1, 0.2, 0.3, 0.4)
    np.testing.assert_array_equal(case_importance(cases, weights), np.asarray(weights)[cases - 1])


@pytest.mark.parametrize("weights", [DEFAULT_WEIGHTS, (1.0, 1.0, 10.0, 1.0), (3.0, 0.0, 3.5, 0.0)])
@pytest.mark.parametrize("accuracy", [(0.9, 0.5), (0.5, 0.9), (0.7, 0.7)])
def test_case3_gets_the_largest_importance(weights, accuracy):
    rng = np.random.default_rng(4)
    correct = np.concatenate([FOUR_ROWS, rng.random((200, 2)) < 0.5])
    cases = probe_cases(correct, accuracy)
    imp = case_importance(cases, weights)
    assert (cases == 3).any()
    assert imp[cases == 3].min() > imp[cases != 3].max()
    # the "only better correct" row is row 2 when probe 0 is better, row 3 otherwise
    best_row = 2 if accuracy[0] > accuracy[1] else 3
    assert imp[best_row] == max(imp)


def test_importance_is_non_negative():
    cases = np.random.default_rng(5).integers(1, 5, size=200)
    assert (case_importance(cases, (0.0, 0.0, 1.0, 0.0)) >= 0).all()


@pytest.mark.parametrize("bad", [[0, 1], [1, 5], [-1, 2, 3], [2, 4, 9]])
def test_cases_outside_1_to_4(bad):
    bad = np.array(bad)
    with pytest.raises(ValueError, match=rf"1\.\.4.*from {bad.min()} to {bad.max()}"):
        case_importance(bad)


def test_non_integer_cases_rejected():
    with pytest.raises(ValueError):
        case_importance(np.array([1.0, 2.5]))


# --- validate_weights ----------------------------------------------------------------------


def test_validate_weights_returns_floats():
    w = validate_weights([2, 1, 6, 1])
    assert w == (2.0, 1.0, 6.0, 1.0)
    assert isinstance(w, tuple) and all(isinstance(x, float) for x in w)


@pytest.mark.parametrize(
    "weights,shown",
    [
        ((1.0, 2.0, 3.0), "(1.0, 2.0, 3.0)"),
        ((1.0, 2.0, 3.0, 4.0, 5.0), "(1.0, 2.0, 3.0, 4.0, 5.0)"),
        ((2.0, -1.0, 6.0, 1.0), "-1.0"),
        ((2.0, math.nan, 6.0, 1.0), "nan"),
        ((2.0, math.inf, 6.0, 1.0), "inf"),
        ((0.0, 0.0, 0.0, 0.0), "(0.0, 0.0, 0.0, 0.0)"),
    ],
)
def test_bad_weights(weights, shown):
    with pytest.raises(ValueError, match="weights") as excinfo:
        validate_weights(weights)
    assert shown in str(excinfo.value)
    with pytest.raises(ValueError, match="weights"):
        case_importance(np.array([1, 2, 3, 4]), weights)


# --- k probes ------------------------------------------------------------------------------
from proxyds.selection.importance import dominant_case, pairwise_cases, pairwise_importance  # noqa: E402


@pytest.mark.parametrize("accuracy", [(0.5, 0.6), (0.7, 0.6), (0.6, 0.6)])
def test_two_probes_pairwise_equals_paper_cases(accuracy):
    correct = np.array([[1, 1], [0, 0], [0, 1], [1, 0]], dtype=bool)
    pairs = pairwise_cases(correct, accuracy)
    assert pairs.shape == (4, 1)
    assert np.array_equal(pairs[:, 0], probe_cases(correct, accuracy))
    assert np.array_equal(dominant_case(pairs), probe_cases(correct, accuracy))
    assert np.array_equal(pairwise_importance(pairs), case_importance(probe_cases(correct, accuracy)))


def test_three_probes_by_hand():
    # probes ordered by accuracy 0 < 1 < 2; pairs (0,1), (0,2), (1,2), the later probe better in each
    correct = np.array([[1, 1, 1],   # all correct: case 1 everywhere
                        [0, 0, 1],   # only the best: (0,1) both wrong, (0,2) agree, (1,2) agree
                        [1, 0, 0]],  # only the worst: (0,1) disagree, (0,2) disagree, (1,2) both wrong
                       dtype=bool)
    pairs = pairwise_cases(correct, [0.5, 0.6, 0.7])
    assert pairs.tolist() == [[1, 1, 1], [2, 3, 3], [4, 4, 2]]
    assert np.allclose(pairwise_importance(pairs), [2.0, (1 + 6 + 6) / 3, (1 + 1 + 1) / 3])
    assert dominant_case(pairs).tolist() == [1, 3, 4]


def test_dominant_case_ties_prefer_informative_cases():
    assert dominant_case(np.array([[1, 3], [2, 4], [1, 2], [4, 3]])).tolist() == [3, 4, 2, 3]


def test_pairwise_cases_rejects_one_probe():
    with pytest.raises(ValueError, match="k>=2"):
        pairwise_cases(np.ones((3, 1), bool), [0.5])
