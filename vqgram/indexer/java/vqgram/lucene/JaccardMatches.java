package vqgram.lucene;

import java.io.IOException;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;

/**
 * Every match of a word disjunction scored by the Jaccard index J = s / (|B| + |A| - s): the
 * searcher must rank by BooleanSimilarity, so the disjunction of the query's |A| words scores
 * s = |A ∩ B|, and NUMERIC doc values hold each document's |B|. The same float arithmetic as
 * vqgram's FunctionScoreQuery, which costs a chain of value-source calls per document.
 */
public final class JaccardMatches extends MatchCollector {
  private final float querySize;
  private final String sizeField;
  private NumericDocValues sizes;

  private JaccardMatches(int expected, int querySize, String sizeField) {
    super(expected);
    this.querySize = querySize;
    this.sizeField = sizeField;
  }

  /**
   * Every document {@code disjunction} (the query's {@code querySize} words) matches, by its
   * Jaccard index against the document's word count in the NUMERIC doc values {@code sizeField}.
   */
  public static Rankings of(IndexSearcher searcher, Query disjunction, int querySize, String sizeField)
      throws IOException {
    return new JaccardMatches(searcher.getIndexReader().numDocs(), querySize, sizeField)
        .collect(searcher, disjunction);
  }

  @Override
  protected void doSetNextReader(LeafReaderContext context) throws IOException {
    super.doSetNextReader(context);
    sizes = DocValues.getNumeric(context.reader(), sizeField);
  }

  @Override
  float score(int doc) throws IOException {
    float inter = scorer.score();
    float size = sizes.advanceExact(doc) ? (float) sizes.longValue() : 0f;
    return inter / (size + (-1f * inter + querySize));
  }
}
