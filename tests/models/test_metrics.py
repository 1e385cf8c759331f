"""Hand-computed values for every metric, NaN handling and the scale fallback."""

import math

import numpy as np
import pytest

from models.core.metrics import ape, coverage, mase, naive_scale, rmsse, smape

NAN = float("nan")


class TestMase:
    def test_seasonal_scale(self):
        # lag-2 differences of 1..6 are all 2 -> scale 2; |7-6|, |8-10| -> mean 1.5
        assert mase([7, 8], [6, 10], [1, 2, 3, 4, 5, 6], m=2) == pytest.approx(0.75)

    def test_scale_skips_pairs_with_a_missing_side(self):
        # pairs (3-1)=2, (4-nan) skipped, (7-3)=4, (6-4)=2 -> scale 8/3; mean error 1.5
        assert mase([7, 8], [6, 10], [1, NAN, 3, 4, 7, 6], m=2) == pytest.approx(1.5 / (8 / 3))

    def test_zero_seasonal_scale_falls_back_to_lag_one(self):
        # lag-2 differences of 1,2,1,2 are 0; lag-1 differences are 1 -> scale 1
        assert mase([7, 8], [6, 10], [1, 2, 1, 2], m=2) == pytest.approx(1.5)

    def test_history_shorter_than_season_falls_back_to_lag_one(self):
        assert mase([7, 8], [6, 10], [1, 3], m=12) == pytest.approx(0.75)

    def test_constant_history_has_no_scale(self):
        assert math.isnan(mase([7], [6], [4, 4, 4], m=12))

    def test_missing_actual_is_ignored(self):
        assert mase([7, NAN], [6, 10], [1, 2, 3, 4, 5, 6], m=2) == pytest.approx(0.5)

    def test_no_actual_at_all_is_nan(self):
        assert math.isnan(mase([NAN, NAN], [6, 10], [1, 2, 3, 4, 5, 6], m=2))

    def test_missing_forecast_for_observed_month_is_an_error(self):
        with pytest.raises(ValueError, match=r"^y_pred is not finite at position 1 where y_true is observed: nan$"):
            mase([7, 8], [6, NAN], [1, 2, 3], m=1)

    def test_length_mismatch_is_an_error(self):
        with pytest.raises(ValueError, match=r"^y_pred has 3 values but y_true has 2$"):
            mase([7, 8], [6, 7, 8], [1, 2, 3], m=1)

    def test_bad_period(self):
        with pytest.raises(ValueError, match=r"^seasonal period m must be a positive integer; got 0$"):
            mase([7], [6], [1, 2, 3], m=0)


class TestRmsse:
    def test_hand_computed(self):
        # lag-1 squared differences of 1,2,4,7: 1,4,9 -> 14/3; squared errors 1,9 -> 5
        assert rmsse([8, 10], [7, 13], [1, 2, 4, 7], m=1) == pytest.approx(math.sqrt(5 / (14 / 3)))

    def test_seasonal_fallback(self):
        # lag-12 undefined on 4 months -> lag 1 as above
        assert rmsse([8, 10], [7, 13], [1, 2, 4, 7], m=12) == pytest.approx(math.sqrt(15 / 14))

    def test_naive_scale_squared(self):
        assert naive_scale([1, 2, 4, 7], m=1, power=2) == pytest.approx(14 / 3)


class TestSmape:
    def test_hand_computed(self):
        # 200*50/150 = 66.67 and 0/0 -> 0 ; mean 33.33
        assert smape([100, 0], [50, 0]) == pytest.approx(100 / 3)

    def test_bounded_by_200(self):
        assert smape([100], [-100]) == pytest.approx(200.0)

    def test_nan_actual_ignored(self):
        assert smape([100, NAN], [50, 3]) == pytest.approx(200 / 3)


class TestCoverage:
    def test_inclusive_bounds_and_nan_actual(self):
        # 1 in [1,2] (inclusive) ; 2 not in [0,1] ; 3 not in [4,5] ; NaN ignored
        assert coverage([1, 2, 3, NAN], [1, 0, 4, 0], [2, 1, 5, 9]) == pytest.approx(1 / 3)

    def test_all_inside(self):
        assert coverage([1, 2], [1, 2], [1, 2]) == 1.0

    def test_crossed_bounds_are_an_error(self):
        with pytest.raises(ValueError, match=r"^lo exceeds hi at observed position 0: 3.0 > 2.0$"):
            coverage([1], [3], [2])


class TestApe:
    def test_scalar(self):
        assert ape(100.0, 110.0) == pytest.approx(10.0)
        assert isinstance(ape(100.0, 90.0), float)

    def test_array(self):
        np.testing.assert_allclose(ape([200, 50, NAN], [150, 60, 1]), [25.0, 20.0, NAN])

    def test_zero_actual(self):
        with pytest.raises(ValueError, match=r"^ape is undefined for an actual of 0 \(position 1\)$"):
            ape([1, 0], [1, 1])
