package vqgram.lucene;

import java.io.IOException;
import java.util.Arrays;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.SimpleCollector;

/** Collects (doc, score) of every match into growing arrays; subclasses say what a match scores. */
abstract class MatchCollector extends SimpleCollector {
  private int[] docs;
  private float[] scores;
  private int size;
  private int docBase;
  Scorable scorer;

  MatchCollector(int expected) {
    docs = new int[Math.max(16, expected)];
    scores = new float[docs.length];
  }

  /** The score of the current match {@code doc} (a doc number of the current segment). */
  abstract float score(int doc) throws IOException;

  /** Every document {@code query} matches, collected. */
  Rankings collect(IndexSearcher searcher, Query query) throws IOException {
    searcher.search(query, this);
    return new Rankings(Arrays.copyOf(docs, size), Arrays.copyOf(scores, size));
  }

  @Override
  protected void doSetNextReader(LeafReaderContext context) throws IOException {
    docBase = context.docBase;
  }

  @Override
  public void setScorer(Scorable scorer) {
    this.scorer = scorer;
  }

  @Override
  public void collect(int doc) throws IOException {
    if (size == docs.length) {
      docs = Arrays.copyOf(docs, 2 * size);
      scores = Arrays.copyOf(scores, 2 * size);
    }
    docs[size] = docBase + doc;
    scores[size] = score(doc);
    size++;
  }

  @Override
  public ScoreMode scoreMode() {
    return ScoreMode.COMPLETE;
  }
}
