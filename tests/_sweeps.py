"""A tiny sweep (its base experiment spec and a 2 x 2 grid) shared by the sweep tests."""

# 2 cores of 80 nm in 64^2 px of 4.16 nm, 3 series, 9 tilts: one cell runs in ~15 s on one core
TINY_BASE = """
name = "tiny"
seed = 3
[phantom]
n_cores = 2
mean_diameter_nm = 80.0
[sintering]
model = "{root}/models/cu_shell_reservoir.toml"
[heating]
pt_time_s = [0, 31, 209]
temperature_C = [372, 372, 350]
[acquisition]
image_pixels = 256
bin = 4
dose_e_per_nm2 = 250.0
tilt_min_deg = -40.0
tilt_max_deg = 40.0
tilt_step_deg = 10.0
reference_frames = 10
[acquisition.stage]
enabled = false  # 2 cores in 9 tilts of 64^2 px are too few for the axis-direction search
[pipeline]
bm3d_profile = "lc"
bm3d_stages = "hard"
method = "pdhg"
iterations = 50
slab_thickness_nm = 200.0
[fit]
spec = "{root}/assimilation/quick.toml"
walkers = 16
steps = 200
burn_in = 50
thin = 5
"""

# +-40 deg in 15 deg steps is invalid (15 does not divide 80): that cell fails, the others run
TINY_SWEEP = """
name = "tiny_sweep"
base = "base.toml"
[sweep]
"acquisition.tilt_range_deg" = [40, 45]
"acquisition.tilt_step_deg" = [10, 15]
"""

BAD_CELL = "tilt_range_deg-40__tilt_step_deg-15"


def write_sweep(tmp_path, root, sweep=TINY_SWEEP):
    (tmp_path / "base.toml").write_text(TINY_BASE.format(root=root))
    path = tmp_path / "sweep.toml"
    path.write_text(sweep)
    return path
