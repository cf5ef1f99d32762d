"""From trained models to a Kaggle kernel that works first time: model pack, kernel init, rehearse.

- `model_pack.pack_models`: model folders/files -> a Kaggle dataset folder holding only what `run` loads
- `kernel_init.init_kernel`: kernel-metadata.json + notebook, ready for `kaggle kernels push -p DIR`
- `rehearse.rehearse_kernel`: the kernel replayed here (static checks, then the cells offline)
"""
