"""Physics checks of the demo emulator's heat-conduction scheme (issue 4, item 6), run on both
solvers (the NumPy reference and the compiled kernel, issue 16 item 2), and the kernel's
equality with the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from permaplug.demo import emulator as E
from permaplug.demo import heat, heat_kernel

STEPS = {"numpy": heat.step, "compiled": heat_kernel.step}

YEAR_S = 365.0 * 86400.0


def _uniform(ncell: int = 2, theta: float = 0.0, k: float = 1.2, c: float = 2.0e6,
             faces: np.ndarray | None = None) -> heat.Column:
    faces = heat.FACES if faces is None else faces
    ones = np.ones((faces.size - 1, ncell))
    return heat.Column(c_solid=c * ones, theta=theta * ones, k_thawed=k * ones,
                       k_frozen=k * ones, width=0.5 * ones, f_res=0.05 * ones, faces=faces)


def _harmonic(series: np.ndarray, t_years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase (rad) of the annual harmonic of series (nt, nz)."""
    basis = np.stack([np.sin(2 * np.pi * t_years), np.cos(2 * np.pi * t_years),
                      np.ones_like(t_years)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, series, rcond=None)
    return np.hypot(coef[0], coef[1]), np.arctan2(coef[1], coef[0])


@pytest.fixture(params=sorted(STEPS))
def step(request):
    """``heat.step`` (NumPy reference) or ``heat_kernel.step`` (compiled): same signature."""
    return STEPS[request.param]


def test_annual_wave_matches_the_damped_wave_solution(step):
    """Without phase change, amplitude ratio exp(-z/d) and lag z/(omega d) within 5 %, using the
    emulator's own grid and its ~7.6-day step (4 steps per month)."""
    col = _uniform(theta=0.0, k=1.2, c=2.0e6)
    kappa = 1.2 / 2.0e6
    omega = 2 * np.pi / YEAR_S
    d = np.sqrt(2 * kappa / omega)  # damping depth, ~3.4 m
    steps_per_year = 48
    dt = YEAR_S / steps_per_year
    T = np.zeros((col.dz.size, 2))
    H = heat.enthalpy(T, col)
    amp_surface = 10.0
    record, times = [], []
    for n in range(steps_per_year * 12):
        t_end = (n + 1) * dt
        surface = amp_surface * np.sin(omega * t_end) * np.ones(2)
        T, H, _ = step(T, H, col, dt, surface, np.zeros(2), 0.0)
        if n >= steps_per_year * 8:
            record.append(T[:, 0].copy())
            times.append(t_end / YEAR_S)
    amp, phase = _harmonic(np.array(record), np.array(times))
    z = col.z
    checked = np.flatnonzero((z > 0.2) & (z < d))  # the ERA5-Land layers' depths, down to d
    assert checked.size >= 6
    for i in checked:
        ratio_expected = np.exp(-z[i] / d)
        lag_expected = z[i] / d  # radians: (z / (omega d)) * omega
        lag = (0.0 - phase[i]) % (2 * np.pi)
        assert amp[i] / amp_surface == pytest.approx(ratio_expected, rel=0.05), f"z={z[i]}"
        assert lag == pytest.approx(lag_expected, rel=0.05), f"z={z[i]}"


def test_closed_column_with_freezing_conserves_energy(step):
    """Insulated top and bottom, ground crossing 0 degC: total enthalpy H(T) stays within 1 %
    of the column's latent heat content after two years of 7.6-day steps."""
    rng = np.random.default_rng(0)
    col = _uniform(ncell=5, theta=0.35, k=1.5, c=1.2e6)
    T = np.linspace(-6.0, 4.0, col.dz.size)[:, None] + rng.normal(0, 2, (1, 5))
    H = heat.enthalpy(T, col)
    e0 = heat.column_energy(heat.enthalpy(T, col), col)
    for _ in range(96):
        T, H, flux = step(T, H, col, YEAR_S / 48, np.zeros(5), np.full(5, np.inf), 0.0)
        assert np.all(flux == 0)
    e1 = heat.column_energy(heat.enthalpy(T, col), col)
    latent = heat.RHO_L * 0.35 * col.faces[-1]
    assert np.max(np.abs(e1 - e0)) / latent < 0.01
    assert np.ptp(T[:, 0]) < 5.0  # heat did move: the initial 10 K contrast relaxed


def test_driven_column_energy_budget_closes(step):
    """Freeze-thaw cycles through a snow-like resistance plus a geothermal flux: the change in
    column enthalpy equals the time-integrated boundary fluxes within 1 %."""
    col = _uniform(ncell=3, theta=0.4, k=1.2, c=1.3e6)
    T = np.zeros((col.dz.size, 3))
    H = heat.enthalpy(T, col)
    e0 = heat.column_energy(heat.enthalpy(T, col), col)
    dt = YEAR_S / 48
    gained = np.zeros(3)
    for n in range(48 * 3):
        surface = (-8.0 + 18.0 * np.sin(2 * np.pi * n / 48)) * np.array([1.0, 1.2, 0.8])
        T, H, flux = step(T, H, col, dt, surface, np.full(3, 0.4), 0.06)
        gained += (flux + 0.06) * dt
    change = heat.column_energy(heat.enthalpy(T, col), col) - e0
    assert np.max(np.abs(change - gained)) <= 0.01 * np.max(np.abs(gained))
    assert np.min(T[0]) < -1 and np.max(heat.liquid_fraction(T, col)) >= 0  # really froze


@settings(max_examples=50, deadline=None)
@given(t=st.floats(-40, 20), theta=st.floats(0.0, 0.6), width=st.floats(0.1, 2.0))
def test_temperature_inverts_enthalpy(t, theta, width):
    ones = np.ones((1, 1))
    col = heat.Column(c_solid=1.5e6 * ones, theta=theta * ones, k_thawed=ones, k_frozen=ones,
                      width=width * ones, f_res=0.05 * ones, faces=np.array([0.0, 1.0]))
    back, slope = heat.temperature(heat.enthalpy(np.full((1, 1), t), col), col)
    assert back[0, 0] == pytest.approx(t, abs=1e-9)
    assert slope[0, 0] > 0


def test_latent_heat_makes_a_zero_curtain(step):
    """A wet column cooled from +2 degC stays in its freezing range (0 to -w) far longer at
    0.6 m than a dry one, and the liquid share falls monotonically with temperature."""
    dt = YEAR_S / 48

    def weeks_near_zero(theta: float) -> int:
        col = _uniform(ncell=1, theta=theta, k=1.2, c=1.5e6)
        T = np.full((col.dz.size, 1), 2.0)
        H = heat.enthalpy(T, col)
        i = int(np.argmin(np.abs(col.z - 0.62)))
        n = 0
        for _ in range(48):
            T, H, _ = step(T, H, col, dt, np.array([-5.0]), np.array([0.3]), 0.0)
            n += int(-0.5 <= T[i, 0] <= 0.05)
        return n

    assert weeks_near_zero(0.4) >= 4 * max(weeks_near_zero(0.0), 1)
    col = _uniform(ncell=1, theta=0.3)
    temps = np.linspace(-3, 1, 41)[:, None]
    f = heat.liquid_fraction(temps, heat.Column(*(a[:1].repeat(41, 0) for a in (
        col.c_solid, col.theta, col.k_thawed, col.k_frozen, col.width, col.f_res)),
        faces=np.linspace(0, 1, 42)))
    assert np.all(np.diff(f[:, 0]) >= 0) and f[-1, 0] == 1.0 and f[0, 0] == pytest.approx(0.05)


def test_snow_insulates_the_ground():
    """Same winter air, deeper snow: warmer ground at 0.5 m (the emulator's snow resistance)."""
    col = _uniform(ncell=2, theta=0.3, k=1.2, c=1.5e6)
    surface = E.Surface(density=np.array([300.0, 300.0]), n_thaw=np.ones(2))
    months = 36
    t2m = np.tile(-12 + 16 * np.sin(2 * np.pi * (np.arange(12) - 3) / 12), 3)[:, None] * [1, 1]
    sf = np.tile(np.where(np.arange(12) >= 9, 1.0, 0.0), 3)[:, None] * np.array([10.0, 60.0])
    state = E.initial_state(col, np.full(2, -5.0))
    _, out = E.run(state, col, surface, t2m, sf, np.full(months, 30.4))
    winter = np.array([m % 12 in (0, 1, 2) for m in range(months)])
    assert out.snow_depth[winter, 1].mean() > 3 * out.snow_depth[winter, 0].mean()
    assert out.stl[winter, 2, 1].mean() > out.stl[winter, 2, 0].mean() + 1.0


def _freezing_block(ncell: int, seed: int) -> tuple[heat.Column, np.ndarray, np.ndarray]:
    """Columns with varied soils, a random start across 0 degC (so Newton needs 1-8 iterations,
    differently per cell)."""
    rng = np.random.default_rng(seed)
    nz = heat.FACES.size - 1
    shape = (nz, ncell)
    col = heat.Column(c_solid=rng.uniform(0.8e6, 2.2e6, shape), theta=rng.uniform(0.0, 0.6, shape),
                      k_thawed=rng.uniform(0.3, 2.0, shape), k_frozen=rng.uniform(0.5, 3.0, shape),
                      width=rng.uniform(0.3, 2.0, shape), f_res=rng.uniform(0.02, 0.1, shape))
    T = rng.normal(-1.0, 4.0, shape)
    return col, T, heat.enthalpy(T, col)


@pytest.mark.parametrize("tol", [1e-3, 1e-7])
def test_compiled_step_equals_the_reference(tol):
    """Several tiles of cells converging after different counts (each cell stops at its own,
    as in the reference), an insulated cell, a Newton start guess: T, H and flux within 1e-9."""
    ncell = 3 * heat_kernel.TILE + 17
    col, T, H = _freezing_block(ncell, 1)
    rng = np.random.default_rng(2)
    surface = rng.normal(-5.0, 10.0, ncell)
    r = rng.uniform(0.0, 1.0, ncell)
    r[5] = np.inf
    guess = H + rng.normal(0.0, 1e5, H.shape)
    for h_guess in (None, guess):
        ref = heat.step(T, H, col, 7 * 86400.0, surface, r, 0.06, tol=tol, h_guess=h_guess)
        new = heat_kernel.step(T, H, col, 7 * 86400.0, surface, r, 0.06, tol=tol,
                               h_guess=h_guess)
        np.testing.assert_allclose(new[0], ref[0], rtol=0, atol=1e-9)  # T, K
        np.testing.assert_allclose(new[1], ref[1], rtol=1e-12, atol=1e-3)  # H, J m-3
        np.testing.assert_allclose(new[2], ref[2], rtol=0, atol=1e-9)  # W m-2
        assert new[2][5] == 0.0


def test_block_iteration_count_is_the_references():
    """A block whose tiles converge after different numbers of iterations: the compiled
    kernel's largest per-cell count is the reference's (the number of tridiagonal solves it
    made: it solves while any cell is still iterating)."""
    ncell = 2 * heat_kernel.TILE
    col, T, H = _freezing_block(ncell, 3)
    T[:, heat_kernel.TILE:] = 5.0 + np.abs(T[:, heat_kernel.TILE:])  # second tile: all thawed
    H = heat.enthalpy(T, col)
    surface = np.where(np.arange(ncell) < heat_kernel.TILE, 15.0, 6.0)
    solves = []
    solve = heat._solve_tridiagonal

    def counting(*args):
        solves.append(1)
        return solve(*args)

    heat._solve_tridiagonal = counting
    try:
        heat.step(T, H, col, 7 * 86400.0, surface, np.zeros(ncell), 0.06)
    finally:
        heat._solve_tridiagonal = solve
    p = heat_kernel.column_props(col)
    h, t, slope = H.copy(), np.empty_like(H), np.empty_like(H)
    count = heat_kernel.advance(
        T, H, h, h, False, t, slope, p["props"], p["k_frozen"], p["log_k_ratio"], p["f_res"],
        p["width"], p["dz"], 7 * 86400.0, surface, np.zeros(ncell), 0.06, 8, 1e-3,
        np.empty((T.shape[0] - 1, ncell)), np.empty(ncell), np.empty(ncell))
    assert 1 < len(solves) < 8
    assert count == len(solves)


def test_compiled_run_equals_the_reference():
    """The emulator's whole monthly loop (snow, drive, Newton start from the last step's
    change, float32 monthly means) on real-forcing demo cells: the compiled engine gives the
    reference's state within 1e-6 K and its monthly outputs within float32 rounding."""
    from permaplug.demo.forcing import reanalysis_forcing
    from permaplug.demo.grid import demo_grid
    from permaplug.demo.simulate import month_days, snow_density, snowfall
    from permaplug.demo.soil import soil_from_statics, static_fields

    grid = demo_grid(2.0)
    lat, lon = grid.cell_lat, grid.cell_lon
    soil = soil_from_statics(static_fields(lat, lon, 0))
    forcing, _ = reanalysis_forcing(lat, lon, 0)
    # calibrated-style surface: a scalar snow-conductivity factor, a melt factor per cell
    surface = E.Surface(density=snow_density(lat), n_thaw=soil.n_thaw, snow_k_factor=1.3,
                        ddf=np.linspace(2.0, 4.0, lat.size))
    state = E.initial_state(soil.column, forcing.sel("1940-01", "1969-12").t2m.mean(axis=0))
    f = forcing.sel("2000-01", "2003-12")
    profiles = {eng: np.zeros((f.time.size, soil.column.faces.size, lat.size))
                for eng in E.ENGINES}
    runs = {eng: E.run(state, soil.column, surface, f.t2m, snowfall(f), month_days(f), 4,
                       profile=profiles[eng], engine=eng) for eng in E.ENGINES}
    (s_new, o_new), (s_ref, o_ref) = runs["compiled"], runs["numpy"]
    np.testing.assert_allclose(s_new.T, s_ref.T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(profiles["compiled"], profiles["numpy"], rtol=0, atol=1e-6)
    assert np.ptp(profiles["numpy"][:, 0]) > 10  # the surface face follows the seasons
    np.testing.assert_allclose(s_new.swe, s_ref.swe, rtol=0, atol=1e-9)
    for name in E.MonthlyOutput.__dataclass_fields__:
        a, b = getattr(o_new, name), getattr(o_ref, name)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        ulp = np.spacing(np.abs(b)).astype(float)
        assert np.all(np.abs(a.astype(float) - b) <= np.maximum(ulp, 1e-6)), name
    assert np.ptp(o_ref.stl) > 10  # the seasons really froze and thawed the ground
    with pytest.raises(ValueError, match="engine"):
        E.run(state, soil.column, surface, f.t2m, snowfall(f), month_days(f), engine="fortran")


@pytest.mark.parametrize("engine", E.ENGINES)
def test_a_cells_result_does_not_depend_on_its_block(engine):
    """Each cell stops Newton at its own convergence, so running a cell in another block (the
    cells reversed; the first third alone; the rest split across tiles differently) gives the
    same numbers to the last bit: the demo data do not depend on how cells are grouped into
    processes, tiles or chunks."""
    ncell = 2 * heat_kernel.TILE + 37
    col, T, H = _freezing_block(ncell, 5)
    months, steps = 3, 4
    rng = np.random.default_rng(6)
    t2m = rng.normal(-2.0, 12.0, (months, ncell))
    sf = rng.uniform(0.0, 40.0, (months, ncell))
    surface = E.Surface(density=np.full(ncell, 300.0), n_thaw=np.full(ncell, 0.9))
    state = E.State(T=T, H=H, swe=np.zeros(ncell))

    def run(cells: np.ndarray):
        sub_col = heat.Column(**{k: getattr(col, k)[:, cells] for k in (
            "c_solid", "theta", "k_thawed", "k_frozen", "width", "f_res")}, faces=col.faces)
        sub_state = E.State(T=T[:, cells], H=H[:, cells], swe=state.swe[cells])
        sub_surface = E.Surface(density=surface.density[cells], n_thaw=surface.n_thaw[cells])
        return E.run(sub_state, sub_col, sub_surface, t2m[:, cells], sf[:, cells],
                     np.full(months, 30.4), steps, engine=engine)

    whole = run(np.arange(ncell))
    assert np.ptp(whole[1].stl) > 1.0  # the cells froze or thawed: Newton had work to do
    parts = [np.arange(ncell)[::-1], np.arange(ncell // 3), np.arange(ncell // 3, ncell)]
    for cells in parts:
        final, out = run(cells)
        np.testing.assert_array_equal(final.T, whole[0].T[:, cells])
        np.testing.assert_array_equal(final.H, whole[0].H[:, cells])
        for name in E.MonthlyOutput.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(out, name), getattr(whole[1], name)[..., cells],
                                          err_msg=name)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7])
def test_substep_temperature_a_stretch_at_a_time_equals_the_whole_series(steps):
    """The emulator makes the sub-monthly air temperature a year at a time (no
    (nt * steps, ncell) array): any stretch of months equals the same rows of the whole series
    to the last bit, edges (held flat) included, and every month keeps its mean."""
    rng = np.random.default_rng(3)
    t2m = rng.normal(-5.0, 12.0, (30, 17))
    whole = E.substep_temperature(t2m, steps)
    assert whole.shape == (30 * steps, 17)
    np.testing.assert_allclose(whole.reshape(30, steps, 17).mean(axis=1), t2m, atol=1e-12)
    for start, stop in [(0, 12), (12, 24), (24, 30), (5, 6), (0, 30), (29, 30)]:
        part = E.substep_temperature(t2m, steps, start, stop)
        np.testing.assert_array_equal(part, whole[start * steps:stop * steps])


@pytest.mark.parametrize("engine", E.ENGINES)
def test_run_records_into_given_arrays(engine):
    """``out`` (e.g. shared memory a parent reads) receives the same monthly means as new
    arrays; arrays of the wrong shape, type or layout are refused, naming the field."""
    ncell, months = 40, 14  # more than one compiled call (12 months each)
    col, T, H = _freezing_block(ncell, 5)
    rng = np.random.default_rng(8)
    t2m = rng.normal(-2.0, 12.0, (months, ncell))
    sf = rng.uniform(0.0, 40.0, (months, ncell))
    surface = E.Surface(density=np.full(ncell, 300.0), n_thaw=np.full(ncell, 0.9))
    state = E.State(T=T, H=H, swe=np.zeros(ncell))
    args = (state, col, surface, t2m, sf, np.full(months, 30.4), 4)
    _, fresh = E.run(*args, engine=engine)
    given = E.MonthlyOutput(*(np.zeros_like(getattr(fresh, k))
                              for k in E.MonthlyOutput.__dataclass_fields__))
    _, got = E.run(*args, engine=engine, out=given)
    assert got is given
    assert np.ptp(given.stl) > 1.0
    for name in E.MonthlyOutput.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(given, name), getattr(fresh, name), err_msg=name)
    wrong = E.MonthlyOutput(*(np.zeros_like(getattr(fresh, k))
                              for k in E.MonthlyOutput.__dataclass_fields__))
    wrong.melt = np.zeros((months, ncell))  # float64
    with pytest.raises(ValueError, match="out.melt"):
        E.run(*args, engine=engine, out=wrong)
    wrong.melt = np.zeros((months + 1, ncell), np.float32)
    with pytest.raises(ValueError, match=r"out.melt.*\(14, 40\)"):
        E.run(*args, engine=engine, out=wrong)


@njit
def _libm_exp(x: np.ndarray) -> np.ndarray:
    """``math.exp`` in compiled code (the C library's exp; NumPy's own differs by an ulp)."""
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = math.exp(x[k])
    return out


def test_vectorised_exp_is_within_one_ulp_of_math_exp():
    """The kernel's exp (a loop LLVM can vectorise) against ``math.exp``: within 1 ulp on the
    fast range, equal beyond it (overflow, underflow, infinities, NaN go to ``math.exp``)."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-40.0, 40.0, 200_000), rng.uniform(-3.0, 3.0, 200_000),
                        [0.0, -0.0, 40.0, -40.0, 0.5 * np.log(2.0), -0.5 * np.log(2.0)]])
    out = np.empty_like(x)
    heat_kernel._exp(x, out, x.size)
    ref = _libm_exp(x)
    assert np.all(np.abs(out - ref) <= np.spacing(ref))
    assert np.mean(out == ref) > 0.8  # mostly the correctly rounded value itself
    special = np.array([np.nan, np.inf, -np.inf, 40.000001, -41.0, 700.0, -745.0, 710.0, 1e300])
    out = np.full_like(special, 123.0)
    heat_kernel._exp(special, out, special.size)
    np.testing.assert_array_equal(out, _libm_exp(special))
    out = np.full(3, 5.0)
    heat_kernel._exp(np.zeros(3), out, 2)  # only the first n are written
    assert out.tolist() == [1.0, 1.0, 5.0]
