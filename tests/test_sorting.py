"""augmenters/_sorting.py: the integer-key sort gives torch.sort's values and indices exactly."""

from __future__ import annotations

import pytest
import torch

from dgbench.augmenters._sorting import order_keys, scratch, sort_rows


def rows(kind: str, dtype: torch.dtype, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, n, generator=g)
    if kind == "relu":
        x = x.relu()
    elif kind == "ties":  # few distinct values, both zeros, infinities
        x = (x * 2).round()
        x[..., ::5] = -0.0
        x[..., 1::7] = 0.0
        x[..., 2::11] = float("inf")
        x[..., 3::13] = -float("inf")
    elif kind == "nan":
        x[..., ::4] = float("nan")
        x[..., 1::9] = -float("nan")
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", ["relu", "normal", "ties", "nan"])
@pytest.mark.parametrize("stable", [False, True])
@pytest.mark.parametrize("n", [1, 2, 49, 784])
def test_sort_rows_is_torch_sort(dtype, kind, stable, n):
    x = rows(kind, dtype, n, seed=n)
    values, order = sort_rows(x, stable)
    ref_values, ref_order = torch.sort(x, dim=-1, stable=stable)
    assert torch.equal(order, ref_order)
    # the same bits, -0.0 and NaN payloads included
    itype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    assert torch.equal(values.view(itype), ref_values.view(itype))


def test_sort_rows_into_a_buffer_and_with_gradient():
    x = rows("relu", torch.float32, 300)
    out = torch.empty_like(x)
    values, order = sort_rows(x, False, out)
    assert values.data_ptr() == out.data_ptr() and torch.equal(values, torch.sort(x, dim=-1)[0])
    x[0, 0, 0] = float("nan")  # the float sort's path: a new tensor, the same values
    values, order = sort_rows(x, False, out)
    ref_values, ref_order = torch.sort(x, dim=-1)
    torch.testing.assert_close(values, ref_values, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(order, ref_order)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    up = torch.randn_like(x)
    (sort_rows(a)[0] * up).sum().backward()
    (torch.sort(b, dim=-1)[0] * up).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_keys_order_as_the_floats_do():
    x = torch.tensor([-float("inf"), -3.5, -1e-38, -1e-45, -0.0, 0.0, 1e-45, 2.0, float("inf")])
    keys = order_keys(x).tolist()
    assert keys[4] == keys[5] == 0  # -0.0 and 0.0: one key
    assert keys[:5] == sorted(keys[:5]) and len(set(keys)) == len(keys) - 1
    assert keys == sorted(keys)


def test_scratch_keeps_one_buffer_per_role_and_shape():
    like = torch.zeros(2, 3, 4)
    a = scratch("test a", like)
    assert scratch("test a", like) is a
    assert scratch("test b", like) is not a
    assert scratch("test a", torch.zeros(2, 3, 5)).shape == (2, 3, 5)
    assert scratch("test a", like, torch.int32).dtype == torch.int32


@pytest.mark.parametrize("shape", [(0, 3, 5), (2, 0), ()])
def test_sort_rows_on_empty_and_scalar_tensors_is_torch_sort(shape):
    x = torch.zeros(shape)
    values, order = sort_rows(x)
    ref_values, ref_order = torch.sort(x, dim=-1)
    assert torch.equal(values, ref_values) and torch.equal(order, ref_order)
