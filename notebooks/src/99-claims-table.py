# %% [markdown]
# # 99 · The README's claims table, from the result files
#
# Reads only `results/`; rewrites the table between the claims markers of `README.md`.
# Every number in that table comes from a file that a notebook wrote.

# %%
from IPython.display import Markdown

from erasure_lib import report, results

# %% tags=parameters
results_dir: str = "results"  # the folder read
readme: str = "README.md"  # the README whose claims table is rewritten

# %%
table = report.update_readme(results.resolve(readme), results.resolve(results_dir))
Markdown(table)
