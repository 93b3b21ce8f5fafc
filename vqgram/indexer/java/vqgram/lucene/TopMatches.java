package vqgram.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;

/** The top k of a query by Lucene's own search, with every document tied with the k-th. */
public final class TopMatches {
  private TopMatches() {}

  /**
   * The top {@code k} of {@code query} by score, and past k every document tied
   * with the k-th (Lucene breaks ties by doc number; the caller, by id). The
   * plain top-k search keeps MaxScore skipping; {@code margin} more hits show
   * whether the k-th is tied, and only then does {@code searchAfter} read on.
   */
  public static Rankings of(IndexSearcher searcher, Query query, int k, int margin) throws IOException {
    int n = k + margin;
    ScoreDoc[] batch = searcher.search(query, n).scoreDocs;
    List<ScoreDoc> docs = new ArrayList<>(Arrays.asList(batch));
    if (batch.length > k) {
      float cut = batch[k - 1].score;
      while (batch.length == n && batch[n - 1].score == cut) {
        batch = searcher.searchAfter(batch[n - 1], query, n).scoreDocs;
        docs.addAll(Arrays.asList(batch));
      }
      docs.removeIf(sd -> sd.score < cut);
    }
    int[] ids = new int[docs.size()];
    float[] scores = new float[docs.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = docs.get(i).doc;
      scores[i] = docs.get(i).score;
    }
    return new Rankings(ids, scores);
  }
}
