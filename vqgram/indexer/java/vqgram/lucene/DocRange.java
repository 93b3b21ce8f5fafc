package vqgram.lucene;

import java.util.ArrayList;
import java.util.List;
import org.apache.lucene.index.LeafReaderContext;

/** Documents [from, to) of one segment: a share of a term-at-a-time query's work. */
final class DocRange {
  final LeafReaderContext leaf;
  final int from;
  final int to;

  private DocRange(LeafReaderContext leaf, int from, int to) {
    this.leaf = leaf;
    this.from = from;
    this.to = to;
  }

  /** The leaves' documents in up to {@code parts} shares of about equal size, cut at multiples of {@code window}. */
  static List<List<DocRange>> split(List<LeafReaderContext> leaves, int parts, int window) {
    long total = 0;
    for (LeafReaderContext leaf : leaves) {
      total += leaf.reader().maxDoc();
    }
    long share = (total + parts - 1) / parts;
    List<List<DocRange>> out = new ArrayList<>();
    out.add(new ArrayList<>());
    long room = share;
    for (LeafReaderContext leaf : leaves) {
      int from = 0;
      int maxDoc = leaf.reader().maxDoc();
      while (from < maxDoc) {
        if (room <= 0 && out.size() < parts) {
          out.add(new ArrayList<>());
          room = share;
        }
        long take = out.size() < parts ? Math.max(window, (room + window - 1) / window * window) : maxDoc;
        int to = (int) Math.min(maxDoc, from + take);
        out.get(out.size() - 1).add(new DocRange(leaf, from, to));
        room -= to - from;
        from = to;
      }
    }
    return out;
  }
}
