// The demo marketplace's listings: second-hand goods from small sellers.
export const PRODUCTS = [
  { product_id: "sh-101", name: "Trail runners, barely worn", category: "shoes", price: 34, seller: "mira_k" },
  { product_id: "sh-102", name: "Canvas sneakers", category: "shoes", price: 12, seller: "dtran" },
  { product_id: "sh-103", name: "Leather ankle boots", category: "shoes", price: 58, seller: "hollis" },
  { product_id: "sh-104", name: "Kids' rain boots", category: "shoes", price: 8, seller: "ana.b" },
  { product_id: "bk-201", name: "Paperback sci-fi bundle (5)", category: "books", price: 9, seller: "pageturner" },
  { product_id: "bk-202", name: "Rust in Action, 1st ed.", category: "books", price: 22, seller: "ferris" },
  { product_id: "bk-203", name: "Vintage cookbook", category: "books", price: 6, seller: "olive" },
  { product_id: "bk-204", name: "Illustrated atlas", category: "books", price: 15, seller: "mapnerd" },
  { product_id: "el-301", name: "Mechanical keyboard", category: "electronics", price: 45, seller: "clacky" },
  { product_id: "el-302", name: "Refurbished e-reader", category: "electronics", price: 39, seller: "ana.b" },
  { product_id: "el-303", name: "USB-C cable pack", category: "electronics", price: 7, seller: "dtran" },
  { product_id: "el-304", name: "Film camera, 35mm", category: "electronics", price: 85, seller: "hollis" },
  { product_id: "hm-401", name: "Ceramic mug set", category: "home", price: 14, seller: "olive" },
  { product_id: "hm-402", name: "Desk lamp, brass", category: "home", price: 27, seller: "mira_k" },
  { product_id: "hm-403", name: "Houseplant cutting", category: "home", price: 4, seller: "greenthumb" },
  { product_id: "hm-404", name: "Wool throw blanket", category: "home", price: 31, seller: "pageturner" },
  { product_id: "ty-501", name: "Wooden train set", category: "toys", price: 19, seller: "ana.b" },
  { product_id: "ty-502", name: "Board game, complete", category: "toys", price: 11, seller: "mapnerd" },
];

/** A colour per category, for the listing tiles. */
export const COLOURS = { shoes: "#e9a23b", books: "#4f7cac", electronics: "#6b5b95", home: "#5fa36a", toys: "#d9534f" };

export const CATEGORIES = ["all", ...new Set(PRODUCTS.map((p) => p.category))];
