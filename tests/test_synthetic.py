from mlops import synthetic


def test_same_rows_and_seed_give_the_same_frame():
    a = synthetic.generate(500, 3)
    b = synthetic.generate(500, 3)
    assert a.equals(b)
    assert not a.equals(synthetic.generate(500, 4))


def test_columns_label_and_honest_shape():
    frame = synthetic.generate(4000, 7)
    assert list(frame.columns) == synthetic.NUMERIC + synthetic.CATEGORICAL + [synthetic.LABEL]
    assert set(frame[synthetic.LABEL].unique()) == {0, 1}
    share = frame[synthetic.LABEL].mean()
    assert 0.1 < share < 0.45  # a minority class, as churn is
    missing = frame.isna().mean()
    assert 0.005 < missing["income"] < 0.05 and missing["age"] == 0
    assert set(frame["plan"].dropna()) == set(synthetic.PLANS)
