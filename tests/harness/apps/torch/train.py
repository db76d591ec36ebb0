"""The workload of the torchrun tests: one gloo all-reduce, checked on every rank.

Each rank contributes rank + 1; every rank must get 1 + 2 + ... + world. The line it prints
carries time.monotonic() (one clock for every pod on the node) when the collective completed,
so a test can measure the time from a pod's start to the first collective.
"""

import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")  # env:// : MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
rank, world = dist.get_rank(), dist.get_world_size()
tensor = torch.tensor([float(rank + 1)])
dist.all_reduce(tensor)
done = time.monotonic()
want = world * (world + 1) / 2
if tensor.item() != want:
    raise SystemExit(f"allreduce WRONG rank={rank} world={world} sum={tensor.item()} want={want}")
print(f"allreduce ok rank={rank} world={world} sum={tensor.item():g} at={done:.3f}", flush=True)
dist.destroy_process_group()
