package ssm

import "context"

// SetParameter stores a String parameter as PutParameter with Overwrite
// would, for the lab to seed what an administrator would have put there
// (the Passport policy).
func (s *Service) SetParameter(name, value string) error {
	typ := "String"
	tier := "Advanced" // policies outgrow the Standard tier's 4 KB quickly
	_, err := s.putParameter(context.Background(), &putParameterInput{Name: &name, Value: &value, Type: &typ, Tier: &tier, Overwrite: true})
	return err
}
