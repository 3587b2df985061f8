"""Files at the edge: TOML cards and specs, netCDF datasets, real stacks.

Everything here touches the file system; the stage subpackages never do.
"""

from .netcdf import open_dataset_checked, write_dataset_atomic
from .stacks import read_angles, read_tilt_series
from .toml import read_toml

__all__ = ["open_dataset_checked", "read_angles", "read_tilt_series", "read_toml", "write_dataset_atomic"]
