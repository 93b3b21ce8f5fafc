package vqgram.lucene;

import java.io.IOException;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;

/** Every match of a query with its score under the searcher's similarity: a whole ranking. */
public final class AllMatches extends MatchCollector {
  private AllMatches(int expected) {
    super(expected);
  }

  /** Every document {@code query} matches, with its score under the searcher's similarity. */
  public static Rankings of(IndexSearcher searcher, Query query) throws IOException {
    return new AllMatches(searcher.getIndexReader().numDocs()).collect(searcher, query);
  }

  @Override
  float score(int doc) throws IOException {
    return scorer.score();
  }
}
