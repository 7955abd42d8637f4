"""Asset actions (gse.md §3A) beyond what the lifecycle needs."""

from __future__ import annotations

from conftest import CRED_A, CRED_B, REGION, TIME_RE, create_asset, sign_modes


@sign_modes
def test_describe_assets_paging_and_delete(sessiond, sign):
    gse = sessiond.gse(CRED_A, sign)
    ids = [create_asset(gse, f"asset-{sign.id}-{i}") for i in range(3)]

    mine = []
    for offset in range(0, 100, 2):
        page = gse.DescribeAssets(AssetRegion=REGION, Offset=offset, Limit=2)
        assert len(page["Assets"] or []) <= 2, page
        mine += [a["AssetId"] for a in page["Assets"] or []]
        if offset + 2 >= page["TotalCount"]:
            break
    assert set(ids) <= set(mine), (ids, mine)
    assert len(mine) == len(set(mine)), f"duplicates across pages: {mine}"

    out = gse.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100,
                             Filters=[{"Key": "resource:name", "Values": [f"asset-{sign.id}-1"]}])
    assert [a["AssetId"] for a in out["Assets"]] == [ids[1]], out
    a = out["Assets"][0]
    assert a["AssetVersion"] == "1.0" and a["OperateSystem"] == "CentOS7.16", a
    assert a["Stauts"] == 2 and a["AssetArn"] and TIME_RE.match(a["CreateTime"] or ""), a

    # account B sees none of them
    other = sessiond.gse(CRED_B, sign)
    seen_by_b = other.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100)["Assets"] or []
    assert not set(ids) & {a["AssetId"] for a in seen_by_b}, seen_by_b

    for asset_id in ids:
        gse.DeleteAsset(AssetId=asset_id)
    left = gse.DescribeAssets(AssetRegion=REGION, Offset=0, Limit=100)["Assets"] or []
    assert not set(ids) & {a["AssetId"] for a in left}, left


def test_describe_asset(sessiond):
    """DescribeAsset is one of the four asset actions of gse.md §3A."""
    gse = sessiond.gse(CRED_A)
    asset_id = create_asset(gse, "asset-single")
    try:
        asset = gse.DescribeAsset(AssetId=asset_id)["Asset"]
        assert asset["AssetId"] == asset_id, asset
        assert asset["AssetName"] == "asset-single", asset
        assert asset["AssetVersion"] == "1.0", asset
        assert asset["OperateSystem"] == "CentOS7.16", asset
        assert asset["Stauts"] == 2, asset
        assert asset["AssetArn"], asset
        assert asset["BindFleetNum"] == 0, asset
        assert TIME_RE.match(asset["CreateTime"] or ""), asset
    finally:
        gse.DeleteAsset(AssetId=asset_id)
