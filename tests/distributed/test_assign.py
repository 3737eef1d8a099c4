from hampart.distributed.assign import assign_parts


def test_lpt_covers_every_part_once_and_balances():
    costs = [10, 9, 8, 7, 6, 5, 4, 3]
    ranks = assign_parts(costs, 3)
    flat = sorted(p for r in ranks for p in r)
    assert flat == list(range(8))
    loads = [sum(costs[p] for p in r) for r in ranks]
    # Graham's bound for longest-processing-time: within 4/3 of the optimum's lower bound
    assert max(loads) <= 4 / 3 * max(sum(costs) / 3, max(costs))
    assert max(loads) < sum(costs)  # and not everything on one rank


def test_more_ranks_than_parts():
    ranks = assign_parts([5, 1], 4)
    assert sorted(len(r) for r in ranks) == [0, 0, 1, 1]
