package vqgram.lucene;

import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.TermQuery;

/** Queries built from arrays in one call. */
public final class Queries {
  private Queries() {}

  /**
   * BooleanQuery(SHOULD BoostQuery(TermQuery)) over {@code field}, one clause per
   * term; {@code boosts} null leaves the terms unboosted. One call instead of
   * parsing a query string (384 terms: ~3 ms) or four calls per term.
   */
  public static Query disjunction(String field, String[] terms, float[] boosts) {
    BooleanQuery.Builder query = new BooleanQuery.Builder();
    for (int i = 0; i < terms.length; i++) {
      Query term = new TermQuery(new Term(field, terms[i]));
      query.add(boosts == null ? term : new BoostQuery(term, boosts[i]), BooleanClause.Occur.SHOULD);
    }
    return query.build();
  }
}
