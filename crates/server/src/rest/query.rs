//! A request's query parameters, read strictly: each parameter once, none the endpoint
//! does not know (a misspelt `limt=` is an error, not silently ignored).

use super::errors::RestError;

/// The parameters of one request, taken one by one by the endpoint.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `query` (`a=1&b=x`, percent- and `+`-decoded).
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query { pairs }
    }

    /// Takes parameter `name`; refuses it given twice.
    pub fn take(&mut self, name: &'static str) -> Result<Option<String>, RestError> {
        let mut found = None;
        let mut i = 0;
        while i < self.pairs.len() {
            if self.pairs[i].0 == name {
                let (_, value) = self.pairs.remove(i);
                if found.replace(value).is_some() {
                    return Err(RestError::BadParameter {
                        param: name,
                        reason: "given more than once".into(),
                    });
                }
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// Takes parameter `name` as a whole number.
    pub fn take_u64(&mut self, name: &'static str) -> Result<Option<u64>, RestError> {
        self.take(name)?
            .map(|text| {
                text.parse::<u64>().map_err(|_| RestError::BadParameter {
                    param: name,
                    reason: format!("{text:?} is not a whole number (0 or more)"),
                })
            })
            .transpose()
    }

    /// Takes parameter `name` as `true` or `false`.
    pub fn take_bool(&mut self, name: &'static str) -> Result<Option<bool>, RestError> {
        self.take(name)?
            .map(|text| match text.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(RestError::BadParameter {
                    param: name,
                    reason: format!("{text:?} is neither `true` nor `false`"),
                }),
            })
            .transpose()
    }

    /// Refuses whatever parameter was not taken.
    pub fn finish(self) -> Result<(), RestError> {
        match self.pairs.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => Err(RestError::BadParameter {
                param: "query",
                reason: format!("unknown parameter {name:?} for this endpoint"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_taken_once_and_unknown_ones_refused() {
        let mut q = Query::parse(Some("path=a.b&version=3"));
        assert_eq!(q.take("path").unwrap().as_deref(), Some("a.b"));
        assert_eq!(q.take_u64("version").unwrap(), Some(3));
        assert!(q.finish().is_ok());
        let mut q = Query::parse(Some("version=-1"));
        assert!(q.take_u64("version").is_err());
        let mut q = Query::parse(Some("a=1&a=2"));
        assert!(q.take("a").is_err());
        assert!(Query::parse(Some("limt=3")).finish().is_err());
        let mut q = Query::parse(Some("history=true&h=1"));
        assert_eq!(q.take_bool("history").unwrap(), Some(true));
        assert!(q.take_bool("h").is_err());
        let mut q = Query::parse(Some("prefix=a%2Fb+c"));
        assert_eq!(q.take("prefix").unwrap().as_deref(), Some("a/b c"));
    }
}
